"""Locks (issue 22): every env is recorded as a PEP 751 ``pylock.toml``, an env can be installed
from one, and unpinned requirements can be resolved as of a date.

- A lock is uv's own output (``uv pip compile --format pylock.toml``) for what the env adds over the
  base: each package with its version, artifact URL and hashes. live-code appends one table of its
  own, ``[tool.live-code]`` (PEP 751 leaves ``[tool]`` to tools): the base's fingerprint, the
  Python, the requirements' digest and the resolution date. Credentials never reach it.
- Two locks are the same env when :attr:`Lock.digest` matches: sha256 over the sorted (name,
  version, hashes) of their packages, whatever the URLs and the formatting.
- Resolution as of a date (:mod:`live_code.envs.resolve`) is uv's ``--exclude-newer``; here is
  only what the task keys ask for (:func:`as_of_date`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from live_code import contract, util
from live_code.envs.base import BaseInfo, is_protected
from live_code.envs.installer import IndexSettings, offline_flags
from live_code.errors import ConfigError, EnvironmentBuildError, RequirementError
from live_code.record import field, record

if TYPE_CHECKING:
    from live_code.envs.builder import EnvSpec
    from live_code.envs.resolve import Resolution
    from live_code.task.config import Task

#: the lock's file name, in the env, next to the provenance in /out, and in /out/models (PEP 751)
LOCK_NAME = contract.LOCK_NAME
_TOOL_HEADER = "[tool.live-code]"
#: uv marks reading and writing pylock.toml as a preview feature
PREVIEW = ("--preview-features", "pylock")
#: ``live_code_lock: model``: the lock of the model package in /in/models
MODEL = "model"
#: ``live_code_resolve_as_of: commit``: the commit's committer date
COMMIT = "commit"
_DAY = dt.timedelta(days=1)


@record
class LockedPackage:
    name: str
    version: str
    #: ``sha256:<hex>`` of each artifact, sorted
    hashes: tuple[str, ...]
    #: where each artifact is fetched from (URLs or paths)
    sources: tuple[str, ...]
    #: fetched by git (a ``vcs`` entry)
    vcs: bool = False


@record
class Lock:
    """A ``pylock.toml`` as read: its text, its packages and live-code's own table."""

    #: where it came from, in words (``the model package's /in/models/pylock.toml``)
    origin: str
    text: str
    packages: tuple[LockedPackage, ...]
    tool: Mapping[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 over the sorted (name, version, hashes) of the packages: the env, not the file."""
        rows = sorted([p.name, p.version, list(p.hashes)] for p in self.packages)
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """For the provenance."""
        return {
            "origin": self.origin,
            "sha256": self.digest,
            "packages": [f"{p.name}=={p.version}" for p in self.packages],
        }


def parse_lock(text: str, origin: str) -> Lock:
    """A lock's packages; ConfigError naming ``origin`` when it is not a PEP 751 lock."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser before it joined the standard library (a dependency on those Pythons)
        import tomli as tomllib
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"{origin} is not valid TOML: {e}", value=origin, hint="give a pylock.toml (PEP 751)"
        ) from None
    if not str(doc.get("lock-version", "")).startswith("1.") or not isinstance(doc.get("packages", []), list):
        raise ConfigError(
            f"{origin} is not a PEP 751 lock (no lock-version 1.x)",
            value=origin,
            hint="make one with `live-code lock REPO@PIN -o pylock.toml`",
        )
    packages = []
    for entry in doc.get("packages", []):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"{origin}: a [[packages]] entry has no name", value=origin)
        artifacts = [*entry.get("wheels", []), *([entry["sdist"]] if "sdist" in entry else [])]
        for key in ("archive", "vcs", "directory"):
            if key in entry:
                artifacts.append(entry[key])
        hashes = sorted(f"{k}:{v}" for a in artifacts for k, v in (a.get("hashes") or {}).items())
        extra = [str(entry["vcs"].get("commit-id", ""))] if "vcs" in entry else []
        sources = tuple(str(a.get("url") or a.get("path") or "") for a in artifacts)
        packages.append(
            LockedPackage(
                util.canonical_name(entry["name"]),
                str(entry.get("version", "")),
                (*hashes, *extra),
                sources,
                "vcs" in entry,
            )
        )
    tool = doc.get("tool", {}).get("live-code", {})
    return Lock(origin, text, tuple(packages), tool if isinstance(tool, dict) else {})


def read_lock(path: Path, origin: str) -> Lock:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {origin}: {e}", value=str(path)) from None
    return parse_lock(text, origin)


def with_tool(text: str, facts: Mapping[str, str]) -> str:
    """``text`` with its ``[tool.live-code]`` table (live-code's facts) replaced by ``facts``, and
    every URL's credentials removed."""
    head, _, rest = text.partition(f"\n{_TOOL_HEADER}\n")
    tail = rest[m.start() :] if (m := re.search(r"^\[", rest, re.M)) else ""
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in facts.items())
    return util.redact(f"{head.rstrip()}\n\n{_TOOL_HEADER}\n{table}" + (f"\n{tail}" if tail else ""))


def task_env_lock(
    task: Task, src: Path, lock_file: Path | None, commit_time: str | None
) -> tuple[Lock | None, str | None]:
    """For the pipeline: the lock to install (``lock_file``, e.g. replay's, over ``live_code_lock``),
    or the time to resolve as of (``live_code_resolve_as_of``)."""
    if lock_file is not None:
        return read_lock(lock_file, f"the recorded lock {lock_file}"), None
    options, models_dir = task.config.options, Path(task.host_path(task.env.input.models_dir))
    return task_lock(options.lock, src, models_dir), as_of_date(options.resolve_as_of, commit_time)


def env_lock_text(env_path: Path) -> str | None:
    """The lock a built env recorded (None for an env built before locks were, or by pip)."""
    try:
        return (env_path / LOCK_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def task_lock(option: str | None, src: Path, models_dir: Path) -> Lock | None:
    """The lock ``live_code_lock`` names: ``model`` (the model package's), or a path in the repo."""
    if not option:
        return None
    if option == MODEL:  # at the package's root, or in the stage dir YMIR delivers
        found = [models_dir / LOCK_NAME, *sorted(models_dir.glob(f"*/{LOCK_NAME}"))]
        path = next((p for p in found if p.is_file()), models_dir / LOCK_NAME)
        origin = f"the model package's {LOCK_NAME}"
        if not path.is_file():
            raise ConfigError(
                f"live_code_lock: model, but the model package has no {LOCK_NAME} ({path})",
                value=option,
                hint="the model was trained before live-code recorded locks: train it again, or remove the key",
            )
        return read_lock(path, origin)
    path = Path(os.path.realpath(src / option))
    if Path(os.path.realpath(src)) not in path.parents or not path.is_file():
        raise ConfigError(
            f"live_code_lock: {option} is not a file inside the repository",
            value=option,
            hint=f"give `model` or a path relative to the repo root (e.g. {LOCK_NAME})",
        )
    return read_lock(path, f"the repository's {option}")


def as_of_date(option: str | None, commit_time: str | None) -> str | None:
    """``live_code_resolve_as_of`` as an RFC 3339 UTC time for uv's ``--exclude-newer``."""
    if not option:
        return None
    value = commit_time if option == COMMIT else option
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        what = "the commit's date is not known" if option == COMMIT else f"{option!r} is not a date"
        raise ConfigError(f"cannot resolve as of {option}: {what}", value=option, hint="give YYYY-MM-DD") from None
    if when.tzinfo is None:  # a date: the end of that day
        when = when.replace(tzinfo=dt.timezone.utc) + (_DAY if len(str(value)) <= 10 else dt.timedelta())
    return rfc3339(when)


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: the lock of an env that adds nothing over the base
EMPTY_LOCK = 'lock-version = "1.0"\ncreated-by = "live-code"\npackages = []\n'


def tool_facts(spec: EnvSpec, resolution: Resolution) -> dict[str, str]:
    """live-code's ``[tool.live-code]`` table of a lock of ``spec``'s env."""
    base = spec.base
    return {
        "env-key": spec.key,
        "base-fingerprint": base.fingerprint(),
        "python": base.python_version,
        "platform": base.platform,
        "requirements-sha256": spec.requirements.digest(),
        "resolved-as-of": resolution.as_of or "",
        "installed-from": spec.lock.origin if spec.lock else "a resolution of the requirements",
    }


def isolation_flags(spec: EnvSpec) -> list[str]:
    """uv's flags for live-code.yaml's ``no_build_isolation``."""
    return [flag for name in spec.no_build_isolation for flag in ("--no-build-isolation-package", name)]


# -- installing a lock -----------------------------------------------------------------------------


def check_lock(lock: Lock, base: BaseInfo, index: IndexSettings) -> None:
    """Refuse, before anything is installed, a lock that would replace a framework of the base, or
    fetch a file from elsewhere than https or the task's own index settings (a lock travels with a
    model package: it must not send the installer to a plain-http host or a local path)."""
    origins = {_origin(u) for u in (index.index_url or "", *index.extra_index_urls) if u}
    folders = [str(Path(f).resolve()) for f in index.find_links if "://" not in f]
    for p in lock.packages:
        for source in p.sources:
            url = source.split("+", 1)[1] if source.startswith("git+") else source
            ok = urlsplit(url).scheme == "https" or _origin(url) in origins
            ok = ok or any(os.path.realpath(url.removeprefix("file://")).startswith(d + os.sep) for d in folders)
            if not ok:
                raise ConfigError(
                    f"{lock.origin}: {p.name} {p.version} comes from {util.redact(source)!r}, which is neither "
                    "https nor the task's index or wheelhouse",
                    value=f"{p.name}=={p.version}",
                    hint="lock over the task's index settings (pip_index_url, pip_find_links), or resolve afresh",
                )
    for p in lock.packages:
        have = base.protected.get(p.name)
        if have is not None and is_protected(p.name):
            raise RequirementError(
                f"{lock.origin} holds {p.name} {p.version}, which would replace the base image's {p.name} {have}",
                value=f"{p.name}=={p.version}",
                hint=f"a lock made over another base: run over that image, or lock again over this one ({have})",
            )


def install_argv(spec: EnvSpec, python: str, lock_file: Path) -> list[str]:
    vcs = any(p.vcs for p in spec.lock.packages) if spec.lock else False
    return [
        *spec.installer.argv,
        *("pip", "install", "--no-config", "--python", python, "--no-deps", *PREVIEW),
        *offline_flags(spec.index, vcs=vcs),
        *isolation_flags(spec),
        "-r",
        str(lock_file),
    ]


def lock_failure(e: EnvironmentBuildError, lock: Lock) -> EnvironmentBuildError:
    """A failed install of ``lock``, naming the package (and where it comes from) the installer
    stopped at: a hash that differs, or a file the index no longer serves."""
    text = e.message
    named = [p for p in lock.packages if re.search(rf"\b{re.escape(p.name)}(==| |`|-){re.escape(p.version)}", text)]
    named = named or [p for p in lock.packages if any(s and s in text for s in p.sources)]
    what = "a hash differs" if "hash mismatch" in text.lower() else "the file cannot be fetched or installed"
    if not named:
        return EnvironmentBuildError(f"installing {lock.origin} failed: {text}", value=lock.origin, hint=e.hint)
    p = named[0]
    where = ", ".join(util.redact(s) for s in p.sources) or "the index"
    msg = f"installing {lock.origin} failed at {p.name} {p.version} from {where}: {what}\n{text}"
    hint = (
        f"the index serves other bytes for {p.name} {p.version} than the lock records, or no longer serves "
        "them: restore the index's file, or resolve afresh (without live_code_lock / replay --resolve)"
    )
    return EnvironmentBuildError(msg, value=f"{p.name}=={p.version}", hint=hint)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}" if parts.scheme else ""


# -- the hint for a job that dies in site-packages ---------------------------------------------------

_SITE_ERROR = re.compile(r"\b(ImportError|ModuleNotFoundError|AttributeError)\b")


def job_hint(tail: tuple[str, ...] | list[str], environment: Mapping[str, Any]) -> str | None:
    """The hint for a job that failed in an import or attribute lookup inside site-packages while
    its requirements were resolved afresh with unpinned lines: resolve as of a date, or lock."""
    if not environment.get("unpinned") or environment.get("lock", {}).get("installed"):
        return None
    text = "\n".join(tail)
    if "site-packages" not in text or not _SITE_ERROR.search(text):
        return None
    return (
        "the job failed inside an installed package, and the repo's requirements are not pinned "
        f"({'; '.join(environment['unpinned'][:3])}): a newer release may have broken it. Set "
        "live_code_resolve_as_of: commit to resolve them as of the commit's date, or commit a lock made with "
        "`live-code lock REPO@PIN --as-of commit -o pylock.toml` and set live_code_lock: pylock.toml"
    )
