"""One run, end to end: task -> source -> environment -> merged config -> run -> outputs -> report.

The only module that knows every step (design.md, "The flow of one run"). Each step is timed;
``monitor.txt`` shows life during fetch and install, is left to the job while it runs, and gets
the error state with a code and a one-line reason on any failure; a provenance record is written
next to the outputs (and inside ``/out/models`` for training, so it travels with the model).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import platform
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from live_code import __version__, contract, util
from live_code.contract import MonitorState, TaskKind
from live_code.envs import builder as envs
from live_code.envs import lock as envlock
from live_code.errors import CacheError, ConfigError, JobError, LiveCodeError, OutputError
from live_code.run import fallback, outputs, sandbox, supervisor
from live_code.source import git
from live_code.source.store import Pin, Store
from live_code.task import config as config_mod
from live_code.task import manifest as manifest_mod
from live_code.task.config import Task

log = logging.getLogger(__name__)

CONFIG_NAME = "live-code-config.yaml"
PROVENANCE_NAME = "live-code-provenance.yaml"
#: environment variables passed from the harness to the job; everything else is dropped
JOB_PASS_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
#: the operator may name more variables for the job here (comma-separated names)
JOB_ENV_VAR = "LIVE_CODE_JOB_ENV"
#: monitor percent while live-code prepares the run (YMIR shows life; the job takes it from here)
_PERCENT = {"task": 0.01, "source": 0.02, "environment": 0.04}


class Stopped(BaseException):
    """The harness got SIGTERM/SIGINT/SIGHUP (the platform's ``docker rm -f``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the harness runs (operator side: CLI flags and the harness's environment)."""

    in_dir: Path = Path(contract.IN_DIR)
    out_dir: Path = Path(contract.OUT_DIR)
    #: where per-run working dirs go (default: the system temp dir)
    work_root: Path | None = None
    #: the interpreter the job's env is layered over (``LIVE_CODE_BASE_PYTHON``)
    base_python: str = sys.executable
    #: ``auto``: bubblewrap when the dirs are not already /in and /out and it works; ``on``; ``off``
    sandbox: str = "auto"
    allow_local: bool = False
    token: str | None = dataclasses.field(default=None, repr=False)
    grace: float = 10.0
    fetch_deadline: float = git.DEFAULT_DEADLINE
    install_timeout: float | None = 3600.0
    keep_work: bool = False
    #: extra variable names passed to the job
    job_env: tuple[str, ...] = ()
    #: install the env from this lock, whatever the task says (``live-code replay``)
    lock_file: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        fields: dict[str, Any] = {
            "base_python": env.get("LIVE_CODE_BASE_PYTHON") or sys.executable,
            "allow_local": git.allow_local_from_env(env),
            "token": env.get("LIVE_CODE_GIT_TOKEN") or None,
            "job_env": tuple(n.strip() for n in env.get(JOB_ENV_VAR, "").split(",") if n.strip()),
        }
        if env.get("LIVE_CODE_GRACE"):
            try:
                fields["grace"] = float(env["LIVE_CODE_GRACE"])
            except ValueError:
                raise ConfigError("LIVE_CODE_GRACE must be a number of seconds", value=env["LIVE_CODE_GRACE"]) from None
        if env.get("LIVE_CODE_SANDBOX"):
            fields["sandbox"] = env["LIVE_CODE_SANDBOX"]
        fields.update(overrides)
        return cls(**fields)


@dataclasses.dataclass
class RunResult:
    ok: bool
    provenance: dict[str, Any]
    error: LiveCodeError | None = None


Runner = Callable[[supervisor.RunRequest], supervisor.RunOutcome]


class _Run:
    """State of one run; the steps are methods so that failure handling sees what was done."""

    def __init__(self, settings: Settings, store: Store, runner: Runner) -> None:
        self.s = settings
        self.store = store
        self.runner = runner
        self.task: Task | None = None
        self.task_id = "unknown"
        self.timings: dict[str, float] = {}
        self.record: dict[str, Any] = {
            "live_code": {"version": __version__, "python": sys.version.split()[0], "platform": platform.platform()},
        }
        self.secrets: list[str] = [settings.token] if settings.token else []
        self.percent = 0.0
        self.job_code: int | None = None
        self.src_root = Path()
        #: the env's lock (pylock.toml), written next to the provenance
        self.lock_text: str | None = None

    # -- helpers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 3)

    def out(self, container_path: str) -> Path:
        """A container path under /out, on this machine."""
        return self.s.out_dir / os.path.relpath(container_path, contract.OUT_DIR)

    def monitor(self, percent: float, state: MonitorState, code: int = 0, message: str = "") -> None:
        self.percent = percent
        record = contract.MonitorRecord(
            self.task_id, time.time(), percent, state, code, util.redact(message, self.secrets)
        )
        try:
            _write_over(self.s.out_dir / "monitor.txt", contract.format_monitor(record))
        except OSError as e:
            log.warning("cannot write monitor.txt: %s", e)

    # -- steps ---------------------------------------------------------------------------------

    def read_task(self) -> Task:
        with self.step("task"):
            self.task_id = _peek_task_id(self.s.in_dir) or self.task_id
            task = config_mod.load_task(self.s.in_dir, out_dir=self.s.out_dir)
            self.task, self.task_id = task, task.task_id
            self.record["task"] = {
                "task_id": task.task_id,
                "protocol": task.protocol,
                "kinds": [k.value for k in task.ordered_kinds],
            }
            if task.source is None:
                raise ConfigError(
                    "config.yaml has no git_url: live-code needs the repository to run",
                    hint="set git_url and git_commit (or git_tag) in the task's config",
                )
            self.secrets += [s for s in git.normalise_url(task.source.url, allow_local=True).secrets if s]
            self.monitor(_PERCENT["task"], MonitorState.RUNNING, message="reading the task")
            return task

    def fetch(self, task: Task, work: Path) -> Path:
        assert task.source is not None
        src = work / "src"
        self.src_root = src
        pin = _pin(task.source)
        self.monitor(_PERCENT["task"], MonitorState.RUNNING, message="fetching the source")
        with self.step("fetch"):
            prov = self.store.fetch_source(
                task.source.url,
                pin,
                src,
                allow_branch=task.config.options.allow_branch,
                allow_moved_tag=task.config.options.allow_moved_tag,
                allow_local=self.s.allow_local,
                token=self.s.token,
                deadline=self.s.fetch_deadline,
            )
        self.record["source"] = prov.as_dict()
        self.monitor(_PERCENT["source"], MonitorState.RUNNING, message="source fetched")
        return src

    def fetch_submodules(self, task: Task, src: Path, parent_url: str | None = None, depth: int = 0) -> None:
        """``submodules: true``: each submodule at the commit its parent records, through the
        same mirror cache and URL checks as the repository itself (nested ones too)."""
        assert task.source is not None
        parent = parent_url or task.source.url
        if depth > 5:
            raise ConfigError("submodules nest more than 5 levels deep", hint="flatten the repository's submodules")
        with self.step("fetch"):
            for sub in git.submodules(src):
                url = git.resolve_submodule_url(parent, sub.url)
                prov = self.store.fetch_source(
                    url,
                    Pin("commit", sub.sha),
                    src / sub.path,
                    allow_local=self.s.allow_local,
                    token=self.s.token,
                    deadline=self.s.fetch_deadline,
                )
                self.record["source"].setdefault("submodules", []).append(
                    {
                        "path": str((src / sub.path).relative_to(self.src_root)),
                        "url": prov.url,
                        "commit": prov.commit,
                        **({"mirror": prov.mirror} if prov.mirror else {}),
                    }
                )
                self.fetch_submodules(task, src / sub.path, url, depth + 1)

    def configure(self, task: Task, src: Path, manifest: manifest_mod.Manifest) -> Path:
        """Merge manifest defaults < code_config < config.yaml, check the schema, write the file."""
        with self.step("configure"):
            defaults: dict[str, Any] = {}
            for kind in task.ordered_kinds:
                defaults.update(manifest.defaults(kind))
            code_config_rel = task.config.code_config or manifest.code_config
            code_config: dict[str, Any] = {}
            if code_config_rel:
                path = src / code_config_rel
                if not path.is_file():
                    raise ConfigError(
                        f"code_config {code_config_rel} is not in the repository at this commit",
                        value=code_config_rel,
                        hint="fix code_config (a path relative to the repo root)",
                    )
                if Path(os.path.realpath(src)) not in Path(os.path.realpath(path)).parents:
                    raise ConfigError(
                        f"code_config {code_config_rel} is a link to a file outside the repository",
                        value=code_config_rel,
                        hint="commit the config file itself, not a symlink",
                    )
                code_config, _ = config_mod.read_yaml_mapping(path)
            merged = config_mod.merge_hyperparameters(defaults, code_config, task.config.raw)
            for kind in task.ordered_kinds:
                merged = manifest_mod.validate(
                    manifest,
                    kind,
                    merged,
                    source="the merged config (config.yaml over code_config over live-code.yaml defaults)",
                )
            # the job and the platform read this file: no credential of git_url or an index URL in it
            text = util.redact(yaml.safe_dump(merged, sort_keys=True, allow_unicode=True), self.secrets)
            path = self.s.out_dir / CONFIG_NAME
            try:
                util.atomic_write(path, text)
            except OSError as e:
                raise OutputError(
                    f"cannot write {path}: {e.strerror}",
                    value=str(path),
                    hint="the out dir must be writable and have free space",
                ) from None
            self.record["config"] = {
                "file": f"{contract.OUT_DIR}/{CONFIG_NAME}",
                "code_config": code_config_rel,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            }
            return path

    def prepare_environment(self, task: Task, src: Path, manifest: manifest_mod.Manifest) -> envs.EnvSpec:
        """Check the requirements against the base (a refused line stops here, before any install)."""
        self.monitor(_PERCENT["source"], MonitorState.RUNNING, message="preparing the environment")
        with self.step("environment"):
            pkg = task.config.package_index
            index = envs.IndexSettings(
                index_url=pkg.index_url,
                extra_index_urls=pkg.extra_index_urls,
                find_links=pkg.find_links,
                offline=pkg.offline,
            )
            self.secrets += [s for u in (pkg.index_url or "", *pkg.extra_index_urls) for s in _url_secrets(u)]
            lock, as_of = envlock.task_env_lock(task, src, self.s.lock_file, self.record["source"].get("commit_time"))
            spec = envs.prepare_env(
                src,
                manifest.requirements,
                base_python=self.s.base_python,
                index=index,
                strict_pins=task.config.options.strict_pins,
                legacy_layout=manifest.legacy,
                sdk_option=task.config.options.ymir_exc,
                no_build_isolation=manifest.no_build_isolation,
                lock=lock,
                as_of=as_of,
                base_cache=self.store.root / "base-info",
            )
            log.info("requirements: %s", spec.requirements.reason)
            for line in spec.satisfied_by_base:
                log.info("framework requirement satisfied by the base (nothing installed): %s", line)
            for line in spec.unpinned:
                log.warning("unpinned requirement (recorded): %s", line)
            if manifest.legacy:  # per run: an env reused by another repo was implied by that repo's code
                self.record["legacy"] = spec.implied.as_dict()
                log.info(
                    "legacy layout: the repository root is on PYTHONPATH; executor SDK: %s (%s)",
                    spec.implied.sdk.requirement or "none",
                    spec.implied.sdk.reason,
                )
                for req, why in spec.implied.requirements:
                    log.info("legacy layout: %s (%s)", req, why)
            return spec

    def environment(self, spec: envs.EnvSpec) -> envs.EnvResult:
        """The cached env for ``spec``, built if needed (call it holding ``store.using``)."""
        start = time.monotonic()
        env = envs.ensure_env(
            self.store,
            spec,
            installer_cache=self.store.root / "installer-cache",
            timeout=self.s.install_timeout,
            reporter=logging.getLogger("live_code.envs.builder").info,
        )
        self.timings["environment"] = round(self.timings.get("environment", 0.0) + time.monotonic() - start, 3)
        # why this file is the run's (another repo with the same bytes may have reused the env)
        # built: False when nothing was installed (a cached env: an earlier run's, or one baked into the image)
        self.record["environment"] = {
            **env.provenance,
            "requirements_reason": spec.requirements.reason,
            "built": env.built,
        }
        self.lock_text = envlock.env_lock_text(env.path)
        self.monitor(_PERCENT["environment"], MonitorState.RUNNING, message="environment ready")
        return env

    def run_job(
        self, task: Task, src: Path, work: Path, env: envs.EnvResult, manifest: manifest_mod.Manifest, config_file: Path
    ) -> None:
        mode, reason = _sandbox_mode(self.s)
        self.record["sandbox"] = {"mode": mode, **({"reason": reason} if reason else {})}
        view = None
        if mode == "fallback":
            log.warning(
                "not faithful to the container: %s; the job sees the task at mapped paths on this "
                "machine, so code that hard-codes /in or /out fails, and a write into /in is found "
                "only after the job",
                reason,
            )
            view = fallback.prepare(self.s.in_dir, self.s.out_dir, work, config_file)
        job_env = self._job_env(work, env, src if manifest.legacy else None)
        if view is not None:
            job_env = fallback.job_env(view, job_env)
        in_before = fallback.snapshot(view) if view is not None else {}
        with self.step("run"):
            deadline = time.monotonic() + task.config.options.timeout if task.config.options.timeout else None
            for kinds, argv in _entries(task, manifest, env, task.config.gpu_count):
                remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
                run_env = {**job_env, **({"LIVE_CODE_TASK": kinds[0].value} if len(kinds) == 1 else {})}
                full: Sequence[str] = argv
                if mode == "bwrap":
                    mounts = sandbox.Mounts(self.s.in_dir, self.s.out_dir, read_only=(self.store.root,))
                    full = sandbox.wrap(argv, mounts, cwd=src)
                log.info("running %s for %s", " ".join(argv), "+".join(k.value for k in kinds))
                outcome = self.runner(
                    supervisor.RunRequest(
                        full, src, run_env, timeout=remaining, grace=self.s.grace, secrets=tuple(self.secrets)
                    )
                )
                self.record.setdefault("job", []).append(
                    {
                        "kinds": [k.value for k in kinds],
                        "argv": list(argv),
                        "returncode": outcome.returncode,
                        "signal": outcome.signal,
                        "timed_out": outcome.timed_out,
                        "seconds": round(outcome.elapsed, 3),
                    }
                )
                if outcome.interrupted is not None:
                    raise Stopped(outcome.interrupted)
                if view is not None:  # what the sandbox's read-only /in would have refused
                    changes = fallback.changed_paths(in_before, fallback.snapshot(view))
                    if changes:
                        self.record["sandbox"]["in_written"] = changes[:20]
                        raise fallback.wrote_into_in(changes)
                if not outcome.ok:
                    self.job_code = _job_return_code(self.s.out_dir)
                    refused = fallback.refused_write(view, outcome.tail) if view is not None else None
                    if refused is not None:
                        raise refused
                    tail = "\n".join(f"    {line}" for line in outcome.tail[-10:])
                    msg = outcome.describe() + (f"; its last lines:\n{tail}" if tail else "")
                    hint = "see the job's output above (and /out/ymir-executor-out.log in YMIR)"
                    raise JobError(msg, hint=envlock.job_hint(outcome.tail, env.provenance) or hint)
            if view is not None:
                for name in fallback.unmap_outputs(view):
                    log.info("%s: host paths of the task mapped back to /in", name)

    def _job_env(self, work: Path, env: envs.EnvResult, legacy_root: Path | None = None) -> dict[str, str]:
        """The job's whole environment. ``legacy_root``: a legacy-layout repo's root, put first on
        ``PYTHONPATH`` as the original image's ``PYTHONPATH=.`` did (``from ymir.helper import ...``)."""
        names = (*JOB_PASS_ENV, *self.s.job_env)
        out = {n: os.environ[n] for n in names if n in os.environ}
        home, tmp = work / "home", work / "tmp"
        home.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        # the container's paths; without a sandbox run_job points the job at the mapped ones (fallback.job_env)
        env_file, config = contract.ENV_FILE, f"{contract.OUT_DIR}/{CONFIG_NAME}"
        out.update(
            {
                "PATH": f"{env.path / 'bin'}{os.pathsep}{out.get('PATH', os.defpath)}",
                "HOME": str(home),
                "TMPDIR": str(tmp),
                "PYTHONNOUSERSITE": "1",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([*([str(legacy_root)] if legacy_root else []), str(_sdk_shim(work))]),
                "VIRTUAL_ENV": str(env.path),
                contract.ENV_FILE_VAR: env_file,
                contract.CONFIG_FILE_VAR: config,
            }
        )
        return out

    def check_outputs(self, task: Task) -> None:
        with self.step("outputs"):
            index = task.env.input.candidate_index_file
            use = index and task.kinds & {TaskKind.MINING, TaskKind.INFER}
            candidates = outputs.read_candidates(task.host_path(index)) if use else None
            problems = outputs.validate_outputs(
                task.kinds, self.s.out_dir, task.protocol, task.config.class_names, candidates
            )
            warned = outputs.log_warnings(problems)  # what YMIR accepts: kept in the provenance, not refused
            if warned:
                self.record["warnings"] = [str(p) for p in warned]
            outputs.raise_for_problems(problems)

    def write_provenance(self, outcome: dict[str, Any]) -> None:
        self.record["timings"] = dict(self.timings)
        self.record["outcome"] = outcome
        gpu = _gpu_info()
        if gpu:
            self.record["gpu"] = gpu
        text = util.redact(yaml.safe_dump(self.record, sort_keys=False, allow_unicode=True), self.secrets)
        targets = [self.s.out_dir / PROVENANCE_NAME]
        if self.task is not None and TaskKind.TRAINING in self.task.kinds:
            targets.append(self.out(contract.ENV_OUTPUT_DEFAULTS["models_dir"]) / PROVENANCE_NAME)
        for path in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_over(path, text)
                if self.lock_text is not None:  # the env's lock travels with the provenance (and the model)
                    _write_over(path.parent / envlock.LOCK_NAME, util.redact(self.lock_text, self.secrets))
            except OSError as e:
                log.warning("cannot write %s: %s", path, e)


def run(settings: Settings, *, store: Store | None = None, runner: Runner = supervisor.run) -> RunResult:
    """Run the task in ``settings.in_dir``; raises the LiveCodeError (or Stopped) that ended it,
    after writing the error state and the provenance."""
    settings = dataclasses.replace(settings, in_dir=settings.in_dir.resolve(), out_dir=settings.out_dir.resolve())
    _check_dirs(settings)
    r = _Run(settings, store or Store(), runner)
    supervisor.hide_from_children()  # a job of the same uid cannot read our environment or memory
    work = Path(tempfile.mkdtemp(prefix="live-code-run-", dir=settings.work_root))
    previous = _stop_on_signals()
    try:
        task = r.read_task()
        src = r.fetch(task, work)
        _check_stopped()
        manifest = manifest_mod.load(src)
        r.record["manifest"] = {
            "layout": "legacy" if manifest.legacy else "live-code.yaml",
            "framework": manifest.framework,
            "launcher": manifest.launcher,
        }
        if manifest.lfs:
            raise ConfigError(
                "live-code.yaml asks for git LFS files (lfs: true), which live-code does not fetch",
                hint="commit the files, or download them in the job from a pinned URL with a checksum",
            )
        if manifest.submodules:
            r.fetch_submodules(task, src)
        config_file = r.configure(task, src, manifest)  # a schema error stops the run before any install
        spec = r.prepare_environment(task, src, manifest)
        with r.store.using("envs", spec.key):  # from before the build: gc never removes an env in use
            env = r.environment(spec)
            compiling = envs.start_bytecode_compile(env.path)  # while the job runs; None once done
            try:
                _check_stopped()
                r.run_job(task, src, work, env, manifest, config_file)
            except BaseException:
                envs.finish_bytecode_compile(compiling)
                raise
            envs.finish_bytecode_compile(compiling, timeout=_COMPILE_WAIT, reporter=log.info)
        _check_stopped()
        r.check_outputs(task)
        _check_stopped()
    except LiveCodeError as e:
        code = r.job_code or e.ymir_code
        r.monitor(1.0, MonitorState.ERROR, code, e.one_line())
        r.write_provenance({"ok": False, "exit_code": e.exit_code, "error": e.one_line(), "return_code": code})
        raise
    except Stopped as e:
        reason = f"stopped by {signal.Signals(e.signum).name}"
        r.monitor(r.percent, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, reason)
        r.write_provenance({"ok": False, "exit_code": 128 + e.signum, "error": reason})
        raise
    except KeyboardInterrupt:
        r.monitor(r.percent, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, "interrupted")
        r.write_provenance({"ok": False, "exit_code": 130, "error": "interrupted"})
        raise
    except BaseException as e:  # a bug: still leave a monitor line YMIR can show
        full = _disk_full(e, settings, r.store)
        if full is not None:
            r.monitor(1.0, MonitorState.ERROR, full.ymir_code, full.one_line())
            r.write_provenance(
                {"ok": False, "exit_code": full.exit_code, "error": full.one_line(), "return_code": full.ymir_code}
            )
            raise full from None
        r.monitor(1.0, MonitorState.ERROR, contract.ReturnCode.CONTAINER_ERROR, f"live-code internal error: {e!r}")
        r.write_provenance({"ok": False, "exit_code": 70, "error": f"internal error: {e!r}"})
        raise
    finally:
        _restore_signals(previous)
        if not settings.keep_work:
            util.rmtree(work)
    r.monitor(1.0, MonitorState.RUNNING, message="done")
    r.write_provenance({"ok": True, "exit_code": 0})
    log.info("done: outputs valid; provenance in %s", settings.out_dir / PROVENANCE_NAME)
    return RunResult(True, r.record)


# -- helpers ---------------------------------------------------------------------------------


def _check_dirs(s: Settings) -> None:
    if not (s.in_dir / "env.yaml").is_file():
        raise ConfigError(
            f"{s.in_dir} holds no env.yaml: it is not a YMIR task's in dir",
            value=str(s.in_dir),
            hint="pass --in DIR (a task dir made by YMIR or `live-code sample-dataset`)",
        )
    if not s.out_dir.is_dir() or not os.access(s.out_dir, os.W_OK):
        raise ConfigError(
            f"the out dir {s.out_dir} does not exist or is not writable",
            value=str(s.out_dir),
            hint="create it, or pass --out DIR",
        )


def _peek_task_id(in_dir: Path) -> str | None:
    """env.yaml's task_id for monitor.txt even when the task itself is invalid."""
    with contextlib.suppress(Exception):
        data, _ = config_mod.read_yaml_mapping(in_dir / "env.yaml", empty_ok=False)
        if isinstance(data.get("task_id"), str):
            return data["task_id"]
    return None


def _pin(source: config_mod.SourcePin) -> Pin:
    if source.tag is not None and source.kind in (config_mod.PinKind.COMMIT, config_mod.PinKind.TAG):
        return Pin("tag", source.tag, commit=source.commit)  # both given: the tag must name the commit
    if source.kind is config_mod.PinKind.COMMIT:
        return Pin("commit", source.ref)
    if source.kind is config_mod.PinKind.TAG:
        return Pin("tag", source.ref, commit=source.commit)
    return Pin("legacy-ref", source.ref)


def _url_secrets(url: str) -> list[str]:
    with contextlib.suppress(LiveCodeError):
        return [s for s in git.normalise_url(url, allow_local=True, schemes=("https", "http")).secrets if s]
    return []


def _sandbox_mode(s: Settings) -> tuple[str, str | None]:
    """``container`` (the dirs are /in and /out already), ``bwrap``, or ``fallback`` with the reason."""
    if s.in_dir.resolve() == Path(contract.IN_DIR) and s.out_dir.resolve() == Path(contract.OUT_DIR):
        return "container", None
    if s.sandbox == "off":
        return "fallback", "the sandbox is turned off (LIVE_CODE_SANDBOX=off / --no-sandbox)"
    reason = sandbox.unavailable_reason()
    if reason is None:
        return "bwrap", None
    if s.sandbox == "on":
        raise ConfigError(f"a sandbox was required but {reason}", hint="install bubblewrap, or run without --sandbox")
    return "fallback", reason


def _entries(
    task: Task, manifest: manifest_mod.Manifest, env: envs.EnvResult, gpu_count: int
) -> list[tuple[tuple[TaskKind, ...], tuple[str, ...]]]:
    """What to run, in order: one command for kinds that share an entry (mining before infer)."""
    runs: list[tuple[tuple[TaskKind, ...], tuple[str, ...]]] = []
    for kind in task.ordered_kinds:
        argv = manifest.entry_for(kind)
        if runs and runs[-1][1] == argv:
            runs[-1] = ((*runs[-1][0], kind), argv)
        else:
            runs.append(((kind,), argv))
    return [(kinds, _resolve_argv(argv, env, manifest.launcher, gpu_count)) for kinds, argv in runs]


def _resolve_argv(argv: tuple[str, ...], env: envs.EnvResult, launcher: str | None, gpu_count: int) -> tuple[str, ...]:
    python = str(env.python)
    if argv[0] in ("python", "python3"):
        argv = (python, *argv[1:])
    if launcher == "torchrun" and gpu_count > 1:
        script = argv[1:] if argv[0] == python else argv
        # torch.distributed.run is torchrun's module; one process per GPU on this machine
        argv = (python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpu_count}", *script)
    return argv


_SHIM_INIT = """\
# live-code's SDK as a job sees it: live_code.sdk and live_code.contract, nothing of the harness.
__version__ = {version!r}

import importlib.util as _util
import os as _os
import sys as _sys

if _util.find_spec("yaml") is None:  # the SDK needs PyYAML: a pure-Python copy, after the job's own paths
    _sys.path.append(_os.path.join(_os.path.dirname(__file__), "_vendor"))
"""


def _sdk_shim(work: Path) -> Path:
    """A directory holding only ``live_code/{__init__,contract}.py`` and ``live_code/sdk``: what the
    job may import of live-code, without the harness and its dependencies. PyYAML's pure-Python
    part comes along for a base that lacks it (used only then)."""
    shim = work / "sdk"
    pkg = Path(__file__).resolve().parent.parent  # live_code/
    if not shim.exists():
        (shim / "live_code").mkdir(parents=True)
        (shim / "live_code" / "__init__.py").write_text(_SHIM_INIT.format(version=__version__))
        shutil.copy2(pkg / "contract.py", shim / "live_code" / "contract.py")
        shutil.copytree(pkg / "sdk", shim / "live_code" / "sdk", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(
            Path(yaml.__file__).parent,
            shim / "live_code" / "_vendor" / "yaml",
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"),
        )
    return shim


def _job_return_code(out_dir: Path) -> int | None:
    """The return code a failing job put in monitor.txt (state 4), which YMIR >= 2.3 reports."""
    with contextlib.suppress(OSError, ValueError):
        if not stat.S_ISREG(os.lstat(out_dir / "monitor.txt").st_mode):
            return None  # a FIFO would block the read forever; a link may point anywhere
        record = contract.parse_monitor((out_dir / "monitor.txt").read_text())
        if record.state == MonitorState.ERROR and record.return_code:
            return record.return_code
    return None


#: how long a run whose job is done waits for the env's bytecode compile to end (then it is killed
#: and the next run starts it again)
_COMPILE_WAIT = 600.0

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _write_over(path: Path, text: str) -> None:
    """A harness record (monitor, provenance) written whatever the job left at ``path``: a
    directory there is removed; with no room for a temp file, the old record (a regular file, its
    blocks already allocated) is overwritten in place."""
    if path.is_dir() and not path.is_symlink():
        util.rmtree(path)
    try:
        util.atomic_write(path, text)
    except OSError as e:
        if e.errno not in _NO_SPACE:
            raise
        try:
            st = os.lstat(path)
        except OSError:
            raise e from None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # a link the job made may lead to a file not ours
            raise
        data = text.encode()
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate(len(data))
            f.flush()
            os.fsync(f.fileno())


def _disk_full(e: BaseException, s: Settings, store: Store) -> LiveCodeError | None:
    """A full disk (or file size limit) met by the harness itself, as a classified error naming
    where, or None for any other exception."""
    if not isinstance(e, OSError) or e.errno not in _NO_SPACE:
        return None
    where = os.fspath(e.filename) if e.filename else ""
    msg = f"no space left on the device writing {where or 'a file'}: {e.strerror}"
    hint = "free disk space (the out dir, the work dir and the cache) and run again"
    if where.startswith(str(s.out_dir)):
        return OutputError(msg, value=where, hint=hint)
    if where.startswith(str(store.root)):
        return CacheError(msg, value=where, hint=hint)
    return LiveCodeError(msg, value=where or None, hint=hint)


def _gpu_info() -> list[str] | None:
    if shutil.which("nvidia-smi") is None:
        return None
    with contextlib.suppress(util.CalledProcessError):
        _, out, _ = util.cmd_output(
            "nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader", timeout=10
        )
        return [line.strip() for line in out.splitlines() if line.strip()]
    return None


#: signals that _stop_on_signals' handler got: its exception is lost when the handler runs where
#: Python ignores exceptions (the at-fork hooks of a subprocess being started, a finaliser)
_PENDING: list[int] = []


def _check_stopped() -> None:
    """Raise the Stopped that a signal handler raised where it could not propagate."""
    if _PENDING:
        raise Stopped(_PENDING[0])


def _stop_on_signals() -> dict[int, Any]:
    """Until the job runs (the supervisor forwards signals then), SIGTERM/SIGHUP stop the harness
    with :class:`Stopped`, so that fetch and install clean up their children and the error state
    is written."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    _PENDING.clear()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.getsignal(sig)

        def _raise(signum: int, frame: object) -> None:
            _PENDING.append(signum)
            raise Stopped(signum)

        signal.signal(sig, _raise)
    return previous


def _restore_signals(previous: Mapping[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def describe_sandbox(settings: Settings) -> tuple[str, str | None]:
    """For the CLI: which sandbox mode a run with these settings gets, and why."""
    return _sandbox_mode(settings)


__all__: Sequence[str] = ("RunResult", "Settings", "Stopped", "describe_sandbox", "run")
