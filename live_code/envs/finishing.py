"""What a new env still does while its first job runs: its bytecode compile and its lock (issue 24:
a cold start waits for the install, not for the steps after it).

An env built with ``lock_later`` (the pipeline's) is complete and usable once installed, but its
``pylock.toml`` is not written yet: the resolved lines it must lock wait in
:data:`PENDING_LOCK` inside the env. :class:`Finishing` starts uv's lock of them beside the job
(and the bytecode compile, ``envs.bytecode``), and :meth:`Finishing.finish` writes the lock into
the env and its provenance once the job is done. Until then the env's provenance says
``"pending": true`` under ``lock``. A run killed before that leaves the pending file, so the next
run of the env locks it again; a lock that uv could not write is warned about and tried again the
same way. The lock is written atomically and its pending file removed last, so a reader sees
either no lock or the whole one.

Private to ``envs`` (``builder`` re-exports :class:`Finishing` and :data:`PENDING_LOCK`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live_code import util
from live_code.envs.bytecode import finish_bytecode_compile, start_bytecode_compile
from live_code.envs.installer import Reporter, idle_priority, installer_env
from live_code.envs.lock import LOCK_NAME
from live_code.envs.provenance import PROVENANCE_FILE, write_lock
from live_code.envs.resolve import Resolution, lock_argv, no_lock
from live_code.envs.steps import Background
from live_code.errors import EnvironmentBuildError

if TYPE_CHECKING:
    from live_code.envs.builder import EnvSpec

log = logging.getLogger(__name__)

#: in an env whose lock is still to be written: the resolved lines to lock, one per line
PENDING_LOCK = ".live-code-lock-pending"
#: seconds :class:`Finishing` waits for the compile and lock to be started before the job, or when
#: the run stops (docker stop's grace period is 10 s); forking takes milliseconds
START_WAIT = 5.0


def can_lock_later(spec: EnvSpec) -> bool:
    """Whether ``spec``'s lock may wait for the job: a plain resolution of named requirements. A
    lock that is installed, a resolution as of a date (its lock records the date), a requirement
    built without isolation (its metadata needs the job env) or a path, URL or VCS line (a build
    to lock) keep the lock in the build."""
    return (
        spec.installer.name == "uv"
        and spec.lock is None
        and not spec.as_of
        and not spec.no_build_isolation
        and all(r.kind == "name" for r in spec.requirements.lines)
    )


def mark_pending(path: Path, todo: tuple[str, ...]) -> dict[str, Any]:
    """Leave the lines to lock in the env; the provenance's ``lock`` entry until they are locked."""
    util.atomic_write(path / PENDING_LOCK, "".join(f"{t}\n" for t in todo))
    return {"file": LOCK_NAME, "pending": True, "installed": False, "origin": "a resolution of the requirements"}


class Finishing:
    """Start the env's bytecode compile and, when it is pending, its lock; :meth:`finish` after the
    job, or :meth:`abort`. The lock's scratch folder is ``scratch``, or by default a new one beside
    the env, in the cache, which a sandboxed job sees read-only: the job runs while uv writes the
    lock, and must not be able to change what the env records. It is removed at the end.

    Both are started from a thread, so that the job, started just after, does not wait for them.
    The thread lives until both have ended: Linux sends a child's parent-death signal (which stops
    them if the harness dies) when the thread that started it ends, not the process."""

    def __init__(
        self,
        env_path: Path,
        spec: EnvSpec,
        installer_cache: Path,
        scratch: Path | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.path, self.spec, self._report = env_path, spec, reporter or log.info
        self._compiling: subprocess.Popen[bytes] | None = None
        self._locking: Background | None = None
        self._todo: tuple[str, ...] = ()
        self._scratch, self._own_scratch = (
            scratch or env_path.parent / f".{env_path.name}.lock-{os.getpid()}",
            not scratch,
        )
        self._started, self._ended = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._start, args=(installer_cache,), name="live-code-finishing")
        self._thread.daemon = True
        self._thread.start()

    def _start(self, installer_cache: Path) -> None:
        try:
            self._start_both(installer_cache)
        finally:
            self._started.set()
            self._ended.wait()

    def _start_both(self, installer_cache: Path) -> None:
        self._compiling = start_bytecode_compile(self.path)
        try:
            self._todo = tuple((self.path / PENDING_LOCK).read_text().splitlines())
        except OSError:
            return  # locked already (or read-only: a baked env is locked at prefetch)
        if not os.access(self.path, os.W_OK):
            return
        spec, scratch = self.spec, self._scratch
        try:
            if self._own_scratch:
                _remove_stale(self.path)
                util.rmtree(scratch)  # one left by a killed run of the same pid
            scratch.mkdir(parents=True, exist_ok=True)
            env = installer_env(scratch, installer_cache, spec.index, spec.git_mirrors.insteadof_config())
            argv = lock_argv(spec, self._todo, scratch, spec.base.executable)
            self._locking = Background(argv, env, scratch, "lock", "lock the env", preexec=idle_priority)
        except EnvironmentBuildError as e:
            no_lock(e, self._report)
        except OSError as e:  # e.g. a full disk: the next run tries again
            self._report(f"warning: no lock of the env is recorded: {e}")

    def started(self, timeout: float = START_WAIT) -> None:
        """Wait until both are started (or could not be), at most ``timeout`` seconds."""
        self._wait_started(timeout)

    def _wait_started(self, timeout: float) -> bool:
        """Whether both were started (or could not be) within ``timeout`` seconds. If not, this
        gives up on them with a warning (the next run of the env does them): the thread ends as
        soon as it has started them, and their parent-death signal stops them. Every later call
        then answers False at once."""
        if not self._ended.is_set() and self._started.wait(timeout):
            return True
        if not self._ended.is_set():
            self._report(f"warning: the env's bytecode compile and lock were not started within {timeout:.0f}s")
            self._ended.set()
        return False

    def abort(self) -> None:
        """Stop both now (the job failed or the run was stopped): the next run of the env does them.
        Waits at most :data:`START_WAIT` for them to be started: a stopped harness must exit within
        the platform's grace period."""
        if not self._wait_started(START_WAIT):
            return
        try:
            self._stop()
        finally:
            self._end()

    def _end(self) -> None:
        self._ended.set()
        self._thread.join()
        if self._own_scratch:
            util.rmtree(self._scratch)

    def _stop(self) -> None:
        finish_bytecode_compile(self._compiling)
        if self._locking is not None:
            self._locking.kill()

    def finish(self, timeout: float, compile_wait: float | None = None) -> dict[str, Any] | None:
        """Wait (at most ``timeout`` seconds in all; for the compile at most ``compile_wait``, then
        it is stopped) for both; the env's lock summary when this wrote the lock (None: it was
        written before, or could not be now)."""
        deadline = time.monotonic() + timeout
        if not self._wait_started(timeout):
            return None
        try:
            return self._wait_both(timeout if compile_wait is None else compile_wait, deadline)
        except BaseException:
            self._stop()
            raise
        finally:
            self._end()

    def _wait_both(self, wait: float, deadline: float) -> dict[str, Any] | None:
        finish_bytecode_compile(self._compiling, timeout=wait, reporter=self._report)
        if self._locking is None:
            return None
        try:
            self._locking.wait(max(deadline, time.monotonic() + 1.0))
            text = (self._scratch / LOCK_NAME).read_text()
        except EnvironmentBuildError as e:
            no_lock(e, self._report)
            return None
        try:  # the job is done: a lock that cannot be written now is only warned about
            summary = write_lock(self.path, self.spec, Resolution(self._todo, text))
            _set_provenance_lock(self.path, summary)
            (self.path / PENDING_LOCK).unlink(missing_ok=True)
        except OSError as e:
            self._report(f"warning: no lock of the env is recorded: {e} (the next run of the env tries again)")
            return None
        return summary


def _set_provenance_lock(path: Path, summary: dict[str, Any]) -> None:
    try:
        prov = json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return
    prov["lock"] = summary
    util.atomic_write(path / PROVENANCE_FILE, json.dumps(prov, sort_keys=True, indent=1))


def _remove_stale(env_path: Path) -> None:
    """Lock scratch folders of this env that a killed run left (older than an hour)."""
    now = time.time()
    for old in env_path.parent.glob(f".{env_path.name}.lock-*"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > 3600:
                util.rmtree(old)
