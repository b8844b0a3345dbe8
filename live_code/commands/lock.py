"""``live-code lock REPO[@PIN] [--as-of commit|DATE] [-o FILE] [--check]``: resolve a repository's
requirements over the image's base (its constraints, its protected frameworks) as a run would, and
write what the env adds as a PEP 751 ``pylock.toml`` (or, for any other file name, pinned
requirements with hashes) the user can commit; a task installs it with ``live_code_lock: FILE``.

``--check`` resolves again, preferring the versions of the repository's committed lock (as of the
date it records), and exits 1 when that lock is stale: made from other requirements, or no longer
what they resolve to.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from live_code import util
from live_code.commands import check
from live_code.envs import builder as envs
from live_code.envs import lock as envlock
from live_code.envs import resolve as envresolve
from live_code.envs.installer import installer_env
from live_code.errors import ConfigError, LiveCodeError
from live_code.record import record
from live_code.source.store import Store
from live_code.task import manifest as manifest_mod


@record
class LockResult:
    commit: str
    #: the pylock.toml, with live-code's table
    text: str
    lock: envlock.Lock
    as_of: str | None
    #: the committed lock, for --check (None: the repo has none at that path)
    committed: envlock.Lock | None = None
    requirements_sha256: str = ""


def lock_repo(
    repo: str,
    *,
    as_of: str | None = None,
    index: envs.IndexSettings = envs.DEFAULT_INDEX,
    allow_branch: bool = False,
    base_python: str | None = None,
    store: Store | None = None,
    committed: Path | None = None,
) -> LockResult:
    """Fetch ``repo`` as a run does and lock its requirements over the base (``base_python``, else
    ``LIVE_CODE_BASE_PYTHON``, else live-code's own interpreter). ``committed``: a lock's path in
    the repo whose versions are preferred, and whose date is used unless ``as_of`` is given."""
    store = store or Store()
    root = Path(tempfile.mkdtemp(prefix="live-code-lock-"))
    try:
        _, _, src, prov = check.fetch_repo(repo, root / "fetch", store, allow_branch=allow_branch)
        old = _committed(src, committed)
        if old is not None and not as_of:
            as_of = str(old.tool.get("resolved-as-of") or "") or None
        manifest = manifest_mod.load(src)
        spec = envs.prepare_env(
            src,
            manifest.requirements,
            base_python=base_python or os.environ.get("LIVE_CODE_BASE_PYTHON") or None,
            index=index,
            legacy_layout=manifest.legacy,
            no_build_isolation=manifest.no_build_isolation,
            as_of=envlock.as_of_date(as_of, prov.commit_time),
        )
        prefer = tuple(f"{p.name}=={p.version}" for p in old.packages) if old else ()
        text, used = _resolve(spec, root / "scratch", store, prefer)
    finally:
        util.rmtree(root)
    lock = envlock.parse_lock(text, "the new lock")
    return LockResult(prov.commit, text, lock, used, old, spec.requirements.digest())


def _committed(src: Path, path: Path | None) -> envlock.Lock | None:
    if path is None:
        return None
    if path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"--check needs the lock's path inside the repo, not {path}", value=str(path))
    if not (src / path).is_file():
        return None
    return envlock.read_lock(src / path, f"the committed {path}")


def _resolve(spec: envs.EnvSpec, scratch: Path, store: Store, prefer: tuple[str, ...]) -> tuple[str, str | None]:
    """The resolution a run would make, without building the env: uv's lock with live-code's table."""
    if spec.installer.name != "uv":
        raise LiveCodeError("live-code lock needs uv, and only pip is available", hint="install uv")
    scratch.mkdir(parents=True)
    env = installer_env(scratch, store.root / "installer-cache", spec.index, spec.git_mirrors.insteadof_config())
    if spec.requirements.lines:
        envresolve.write_inputs(spec, scratch)
        res = envresolve.resolve(spec, scratch, env, spec.base.executable, None, _report, prefer=prefer)
    else:
        res = envresolve.Resolution((), None)
    if res.todo and res.lock_text is None:
        raise LiveCodeError("uv could not write a lock of these requirements", hint="see the warning above")
    return envlock.with_tool(res.lock_text or envlock.EMPTY_LOCK, envlock.tool_facts(spec, res)), res.as_of


def _report(line: str) -> None:
    print(line, file=sys.stderr)


def check_lock(
    repo: str,
    path: Path,
    *,
    index: envs.IndexSettings = envs.DEFAULT_INDEX,
    allow_branch: bool = False,
    base_python: str | None = None,
    store: Store | None = None,
) -> str | None:
    """Why the lock committed at ``path`` in ``repo`` is stale, or None when it is up to date."""
    result = lock_repo(
        repo, index=index, allow_branch=allow_branch, base_python=base_python, store=store, committed=path
    )
    old = result.committed
    fix = f"run `live-code lock {util.redact(repo)} -o {path}` and commit it"
    if old is None:
        return f"stale: the repository has no {path} ({fix})"
    if old.tool.get("requirements-sha256") not in (None, result.requirements_sha256):
        return f"stale: {path} was made from other requirements ({fix})"
    if old.digest != result.lock.digest:
        was = {p.name: p.version for p in old.packages}
        now = {p.name: p.version for p in result.lock.packages}
        changed = sorted(n for n in set(was) | set(now) if was.get(n) != now.get(n)) or ["(hashes)"]
        return f"stale: the requirements now resolve otherwise ({', '.join(changed)}) ({fix})"
    return None


def pinned_requirements(lock: envlock.Lock) -> str:
    """The lock as pinned requirements with hashes (pip's and uv's ``--require-hashes`` form)."""
    lines = ["# made by live-code lock; every package the env adds over the base, pinned with its hashes\n"]
    for p in sorted(lock.packages, key=lambda p: p.name):
        hashes = "".join(f" \\\n    --hash={h}" for h in p.hashes if ":" in h)
        lines.append(f"{p.name}=={p.version}{hashes}\n")
    return "".join(lines)


__all__ = ["LockResult", "check_lock", "lock_repo", "pinned_requirements"]
