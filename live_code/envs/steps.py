"""The uv build of a job env, its steps running beside one another (issue 24: a cold start pays
for the install, not for the steps around it).

:func:`install_with_uv` makes the venv while uv resolves, and writes the env's lock while uv
installs. Each such step is a :class:`Background`: a short installer command started now and
waited for later. Its output goes to files in the build's scratch folder (no pipe to pump); it
runs in its own process group, gets SIGKILL if the harness dies (Linux), and is killed with its
group when the build fails first, so no step outlives the build that started it.

Private to ``envs``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from live_code import util
from live_code.envs.base import BaseInfo, site_dirs
from live_code.envs.installer import (
    Installer,
    Reporter,
    chain_preexec,
    die_with_parent,
    fail,
    offline_flags,
    remaining,
    run_streaming,
)
from live_code.envs.lock import LOCK_NAME, isolation_flags
from live_code.envs.resolve import Resolution, lock_argv, no_lock
from live_code.envs.resolve import resolve as resolve_requirements
from live_code.errors import EnvironmentBuildError
from live_code.record import replace

if TYPE_CHECKING:
    from live_code.envs.builder import EnvSpec

#: the ``.pth`` through which a venv made from a venv's python sees that venv's packages
BASE_PTH = "_live_code_base.pth"


class Background:
    """``argv`` started at once in its own process group; :meth:`wait` for its stdout."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        scratch: Path,
        name: str,
        what: str,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.argv, self.what = list(argv), what
        self._out, self._err = scratch / f"{name}.out", scratch / f"{name}.err"
        dies = die_with_parent()
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    preexec_fn=chain_preexec(dies, preexec),
                )
            except OSError as e:
                fail(what, util.CalledProcessError(self.argv, None, "", f"could not start {argv[0]!r}: {e.strerror}"))
        self._done = False

    def wait(self, deadline: float | None) -> str:
        """Its stdout once it has exited 0; ``EnvironmentBuildError`` (``installer.fail``) when it
        failed or ran past ``deadline``, or the step was already waited for and failed."""
        if not self._done:
            try:
                self.proc.wait(timeout=remaining(deadline, self.what))
            except subprocess.TimeoutExpired:
                self.kill()
                self._fail(timed_out=True)
            except BaseException:
                self.kill()
                raise
            self._done = True
        if self.proc.returncode != 0:
            self._fail()
        return self._out.read_text(errors="replace")

    def kill(self) -> None:
        """Stop it and its group now (a no-op once it has exited)."""
        if self.proc.returncode is None:
            util.kill_group(self.proc)
            self.proc.wait()
        self._done = True

    def _fail(self, *, timed_out: bool = False) -> None:
        out, err = (p.read_text(errors="replace") if p.exists() else "" for p in (self._out, self._err))
        fail(self.what, util.CalledProcessError(self.argv, self.proc.returncode, out, err, timed_out=timed_out))


class Venv:
    """The job env's venv, made in the background (by uv, or by the base's own ``venv`` module for
    pip); call :meth:`ready` before anything is installed into it."""

    def __init__(self, path: Path, base: BaseInfo, inst: Installer, env: Mapping[str, str], scratch: Path) -> None:
        self.path, self._venv_site_dirs = path, tuple(base.venv_site_dirs)
        flags = ["--system-site-packages"] if base.system_site else []
        if inst.name == "uv":
            argv = [*inst.argv, "venv", "--no-config", "--python", base.executable, *flags, str(path)]
        else:
            argv = [base.executable, "-m", "venv", "--without-pip", *flags, str(path)]
        self._job = Background(argv, env, scratch, "venv", "create the venv")
        self._ready = False

    def ready(self, deadline: float | None) -> None:
        if self._ready:
            return
        self._job.wait(deadline)
        self._finish()
        self._ready = True

    def kill(self) -> None:
        self._job.kill()

    def _finish(self) -> None:
        if self._venv_site_dirs:
            # A venv made from a venv's python sees the system's site-packages, not that venv's: add
            # them (after the job's own), with their .pth files (editable installs) processed too.
            pth = "".join(f"import site; site.addsitedir({d!r})\n" for d in self._venv_site_dirs)
            for site_dir in site_dirs(self.path):
                (site_dir / BASE_PTH).write_text(pth)


def install_with_uv(
    venv: Venv,
    spec: EnvSpec,
    scratch: Path,
    env: Mapping[str, str],
    deadline: float | None,
    report: Reporter,
    *,
    lock: bool = True,
) -> Resolution:
    """Resolve while the venv is made (against the base's python: the same interpreter; but in the
    job env itself when a requirement is built without isolation), then install what the base
    lacks while uv writes the lock of it (not with ``lock=False``: the caller locks ``todo`` later,
    ``envs.finishing``)."""
    path = venv.path
    if spec.no_build_isolation:
        venv.ready(deadline)
    python = str(path / "bin" / "python") if spec.no_build_isolation else spec.base.executable
    res = resolve_requirements(spec, scratch, env, python, deadline, report, lock=False)
    locking = (
        Background(lock_argv(spec, res.todo, scratch, python), env, scratch, "lock", "lock the env") if lock else None
    )
    try:
        venv.ready(deadline)
        _install_todo(path, spec, res.todo, scratch, env, deadline, report)
    except BaseException:
        if locking is not None:
            locking.kill()
        raise
    if locking is None:
        return res
    lock_text: str | None = None
    try:
        locking.wait(deadline)
        lock_text = (scratch / LOCK_NAME).read_text()
    except EnvironmentBuildError as e:
        no_lock(e, report)
    return replace(res, lock_text=lock_text)


def _install_todo(
    path: Path,
    spec: EnvSpec,
    todo: tuple[str, ...],
    scratch: Path,
    env: Mapping[str, str],
    deadline: float | None,
    report: Reporter,
) -> None:
    """``uv pip install --no-deps`` of the resolved lines ``todo`` into the venv at ``path``."""
    if not todo:
        report("nothing to install: the base has every requirement")
        return
    (scratch / "install.txt").write_text("".join(f"{t}\n" for t in todo))
    report(
        f"installing {len(todo)} packages with uv {spec.installer.version}: "
        + ", ".join(t.split(" --hash")[0] for t in todo)
    )
    # no --compile-bytecode: that was three quarters of a cold start (bench/README.md); the
    # pipeline compiles while the job runs instead (start_bytecode_compile)
    if spec.no_build_isolation:
        isolation = ", ".join(spec.no_build_isolation)
        report(f"building without build isolation, against the job env and its base: {isolation}")
    vcs = any(r.kind == "vcs" for r in spec.requirements.lines)
    run_streaming(
        [
            *spec.installer.argv,
            *("pip", "install", "--no-config", "--python", str(path / "bin" / "python"), "--no-deps"),
            *offline_flags(spec.index, vcs=vcs),
            *isolation_flags(spec),
            *("-r", str(scratch / "install.txt")),
        ],
        env,
        deadline,
        report,
    )
