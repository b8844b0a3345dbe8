"""``live-code check``: is a repository ready for live-code? Static checks, then smoke runs.

Static: the manifest reads (or the legacy layout is found), every entry point exists, the
requirements pass the installer's checks and pin each one to a version (a framework such as torch
must not float: the image's own is used), the schema's defaults have their types, a ``code_config``
file fits the schema. Smoke: every task kind the repository declares runs through ``live-code
local`` on a generated tiny sample dataset (training first; mining and infer get its model, or an
empty models dir when the repo does not train), in the bubblewrap sandbox where available, so a
write into /in fails as in YMIR; every output is validated. Each problem comes with a fix.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from live_code import contract, util
from live_code.commands import local
from live_code.contract import TaskKind
from live_code.envs import builder as envs
from live_code.envs.requirements import RequirementLine
from live_code.errors import ConfigError, EnvironmentBuildError, LiveCodeError
from live_code.record import field, record
from live_code.source.store import SourceProvenance, Store
from live_code.task import config as config_mod
from live_code.task import legacy
from live_code.task import manifest as manifest_mod

log = logging.getLogger(__name__)

OK, FAIL, SKIP, WARN = "ok", "FAIL", "skip", "warn"


class Finding(NamedTuple):
    """One check's outcome; ``fix`` says what to change when it failed."""

    check: str
    status: str
    detail: str
    fix: str = ""


@record(frozen=False)
class CheckReport:
    repo: str
    commit: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == FAIL]

    def add(self, check: str, status: str, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, status, detail, fix))

    def render(self) -> str:
        head = f"live-code check {self.repo}" + (f" (commit {self.commit[:12]})" if self.commit else "")
        lines = [head]
        width = max((len(f.check) for f in self.findings), default=0)
        for f in self.findings:
            detail = f.detail.replace("\n", "\n" + " " * (width + 10))
            lines.append(f"  {f.status:<4}  {f.check:<{width}}  {detail}")
            if f.fix:
                lines.append(f"        {'':<{width}}  fix: {f.fix}")
        n = len(self.problems)
        lines.append(f"{n} problem(s): fix them and run live-code check again" if n else "all checks passed")
        return "\n".join(lines)


def check_repo(
    repo: str,
    *,
    static_only: bool = False,
    allow_branch: bool = False,
    work: Path | None = None,
    sandbox: str | None = None,
    base_python: str | None = None,
    store: Store | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CheckReport:
    """Check ``repo`` (``PATH_OR_URL[@PIN]``, a folder without pin is snapshotted); never raises
    for a problem of the repository: every one is a finding of the report. ``overrides`` are
    hyper-parameters of every smoke run (e.g. a small model and image size for a heavy repo)."""
    store = store or Store()
    report = CheckReport(util.redact(repo))
    root = Path(tempfile.mkdtemp(prefix="live-code-check-")) if work is None else work.absolute()
    root.mkdir(parents=True, exist_ok=True)
    try:
        spec, source, src, prov = fetch_repo(repo, root / "fetch", store, allow_branch=allow_branch)
        report.commit = prov.commit
        manifest = _static(report, src, base_python)
        if static_only:
            report.add("smoke runs", SKIP, "--static: no task was run")
        elif manifest is None or any(f.check != "requirement pins" for f in report.problems):
            report.add("smoke runs", SKIP, "not run: fix the problems above first")
        else:
            base = source.keys["git_url"] if spec.pin is None else spec.location  # a snapshot, or as given
            pinned = f"{base}@{prov.commit}"
            from live_code.commands import check_smoke

            check_smoke.smoke(
                report, pinned, manifest, root / "smoke", sandbox, store, overrides or {}, kept=work is not None
            )
    finally:
        if work is None:
            util.rmtree(root)
    return report


def fetch_repo(
    repo: str, fetch: Path, store: Store, *, allow_branch: bool = False
) -> tuple[local.RepoSpec, local.Source, Path, SourceProvenance]:
    """``repo`` (``PATH_OR_URL[@PIN]``) fetched as a run fetches it, into ``fetch/src`` (a folder
    without a pin is snapshotted into ``fetch/source`` first)."""
    spec = local.parse_repo(repo)
    source = local.resolve_source(spec, fetch, allow_branch=allow_branch)
    prov = store.fetch_source(
        source.keys["git_url"],
        source.pin,
        fetch / "src",
        allow_branch=allow_branch,
        allow_local=True,
        token=source.token or os.environ.get("LIVE_CODE_GIT_TOKEN"),
    )
    return spec, source, fetch / "src", prov


def lock_command(report: CheckReport) -> str:
    """The ``live-code lock`` command that locks the checked repo's requirements as of its commit."""
    location = local.parse_repo(report.repo).location if report.repo else "REPO"
    return f"live-code lock {location}@{report.commit or 'PIN'} --as-of commit -o pylock.toml"


def _framework_lines(report: CheckReport, spec: envs.EnvSpec) -> list[RequirementLine]:
    """The findings on framework lines (torch, ...), with the same verdict as ``live-code run``
    (envs.framework_verdict): a line the base satisfies is fine. Returns those lines."""
    framework = []
    for r in spec.requirements.lines:
        verdict = envs.framework_verdict(r, spec.base)
        if verdict is None:
            continue
        framework.append(r)
        if verdict.status == "base":  # ("refused" lines never get here: prepare_env raised above)
            report.add("requirements", OK, verdict.message)
        elif r.pinned:
            report.add("requirements", WARN, verdict.message, verdict.hint)
        else:
            report.add(
                "requirements",
                FAIL,
                f"{r.origin}: {r.text!r} is a framework package without an exact pin, "
                f"and the base has no {r.name} to satisfy it",
                f"remove the line (an image's {r.name} is used: run over a "
                f"base that has it, LIVE_CODE_BASE_PYTHON) or pin {r.name}==<version>",
            )
    return framework


# -- static --------------------------------------------------------------------------------------


def _static(report: CheckReport, src: Path, base_python: str | None) -> manifest_mod.Manifest | None:
    try:
        manifest = manifest_mod.load(src)
    except ConfigError as e:
        check = (
            "entry points" if "entry" in e.message else "schema defaults" if "default of" in e.message else "manifest"
        )
        report.add(
            check,
            FAIL,
            e.message + (f" ({e.value!r})" if e.value is not None else ""),
            e.hint or f"fix {manifest_mod.MANIFEST_NAME}",
        )
        _requirements(report, src, None, base_python, legacy_layout=False)
        return None
    kinds = [k.value for k in contract.TASK_ORDER if k in manifest.entries]
    if manifest.legacy:
        report.add("manifest", OK, f"legacy layout ({' '.join(manifest.entries[TaskKind.TRAINING])}), no schema")
    else:
        report.add(
            "manifest", OK, f"{manifest_mod.MANIFEST_NAME}: framework {manifest.framework}, tasks {', '.join(kinds)}"
        )
    _entries(report, src, manifest)
    _schema(report, src, manifest)
    _requirements(
        report,
        src,
        manifest.requirements,
        base_python,
        legacy_layout=manifest.legacy,
        no_build_isolation=manifest.no_build_isolation,
    )
    return manifest


def _entries(report: CheckReport, src: Path, manifest: manifest_mod.Manifest) -> None:
    missing = []
    for kind, argv in manifest.entries.items():
        script = (
            next((a for a in argv[1:] if not a.startswith("-")), None)
            if argv[0] in ("python", "python3", "bash", "sh")
            else argv[0]
        )
        if script and ("/" in script or script.endswith((".py", ".sh"))) and not (src / script).is_file():
            missing.append(f"{kind.value}: {' '.join(argv)} ({script} is not in the repository)")
    if missing:
        report.add("entry points", FAIL, "; ".join(missing), "commit the script, or fix `entry:` in live-code.yaml")
    else:
        shown = sorted({" ".join(a) for a in manifest.entries.values()})
        report.add("entry points", OK, "; ".join(shown))


def _schema(report: CheckReport, src: Path, manifest: manifest_mod.Manifest) -> None:
    if manifest.legacy:
        return
    try:
        for kind in manifest.entries:
            merged = manifest.defaults(kind)
            if manifest.code_config:
                code_config, _ = config_mod.read_yaml_mapping(src / manifest.code_config)
                merged.update(code_config)
            manifest_mod.validate(manifest, kind, merged, source=f"the {kind.value} defaults")
    except ConfigError as e:
        report.add(
            "schema defaults",
            FAIL,
            e.message + (f" ({e.value!r})" if e.value is not None else ""),
            e.hint or "make each default (and the code_config value) of the declared type",
        )
        return
    count = len({n for k in manifest.entries for n in manifest.schema.get(k, {})})
    report.add("schema defaults", OK, f"{count} hyper-parameters, defaults of their types")


#: ``file:line: ...``, how a refused requirement line is named
_REFUSED_LINE = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+): ")
_MAX_REFUSED = 50


def _every_refused_line(
    src: Path,
    declared: str | None,
    base_python: str | None,
    *,
    legacy_layout: bool,
    no_build_isolation: tuple[str, ...] = (),
) -> tuple[envs.EnvSpec | None, list[LiveCodeError]]:
    """The installer's checks, every refused line at once: each one found is blanked in a copy of
    the repository and the checks run again (the installer itself stops at the first)."""
    problems: list[LiveCodeError] = []
    tree, copy = src, None
    try:
        for _ in range(_MAX_REFUSED):
            try:
                return envs.prepare_env(
                    tree,
                    declared,
                    base_python=base_python,
                    legacy_layout=legacy_layout,
                    no_build_isolation=no_build_isolation,
                ), problems
            except (ConfigError, EnvironmentBuildError) as e:
                problems.append(e)
                m = _REFUSED_LINE.match(e.message)
                if m is None:
                    return None, problems
                if copy is None:
                    copy = Path(tempfile.mkdtemp(prefix="live-code-check-reqs-"))
                    shutil.copytree(src, copy / "src", symlinks=True, ignore=shutil.ignore_patterns(".git"))
                    tree = copy / "src"
                file = tree / m["file"]
                lines = file.read_text(encoding="utf-8").splitlines(keepends=True) if file.is_file() else []
                number = int(m["line"])
                if not 0 < number <= len(lines) or not lines[number - 1].strip():
                    return None, problems
                lines[number - 1] = "\n"
                file.write_text("".join(lines), encoding="utf-8")
        return None, problems
    finally:
        if copy is not None:
            util.rmtree(copy)


def _requirements(
    report: CheckReport,
    src: Path,
    declared: str | None,
    base_python: str | None,
    *,
    legacy_layout: bool,
    no_build_isolation: tuple[str, ...] = (),
) -> None:
    python = base_python or os.environ.get("LIVE_CODE_BASE_PYTHON")
    spec, problems = _every_refused_line(
        src, declared, python, legacy_layout=legacy_layout, no_build_isolation=no_build_isolation
    )
    if problems:
        hints = list(dict.fromkeys(e.hint for e in problems if e.hint))
        report.add(
            "requirements",
            FAIL,
            "\n".join(e.message for e in problems),
            "; ".join(hints) or "fix the requirements file",
        )
        return
    assert spec is not None
    reqs = spec.requirements
    report.add("requirements file", OK, reqs.reason)
    if legacy_layout:
        implied = "; ".join(r for r, _ in spec.implied.requirements) or "nothing"
        report.add(
            "legacy layout",
            OK,
            f"the job gets {implied}, and the repository root on PYTHONPATH; "
            f"executor SDK: {spec.implied.sdk.requirement or 'none'} ({spec.implied.sdk.reason})",
        )
    framework = _framework_lines(report, spec)
    loose = [r for r in reqs.lines if not r.pinned and r not in framework]
    if loose:
        report.add(
            "requirement pins",
            FAIL,
            "not pinned to one version: " + "; ".join(f"{r.origin}: {r.text}" for r in loose),
            f"pin each as name==version, or lock them: {lock_command(report)}, commit pylock.toml and set "
            "live_code_lock: pylock.toml in the task (a re-run then gets the same environment)",
        )
    if not framework and not loose:
        own = [r for r in reqs.lines if r.origin != legacy.IMPLIED]
        what = f"{len(own)} in {reqs.file}, all pinned" if reqs.file else "none (the base image's packages)"
        report.add("requirements", OK, what)


__all__: Sequence[str] = ("CheckReport", "Finding", "check_repo")
