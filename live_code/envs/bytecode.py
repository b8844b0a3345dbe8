"""Compiling a new env's own packages to bytecode in the background, while the job runs.

Private to ``envs`` (``builder`` re-exports both functions and :data:`COMPILED_MARKER`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

from live_code.envs.base import site_dirs
from live_code.envs.installer import Reporter, chain_preexec, die_with_parent, idle_priority

log = logging.getLogger(__name__)

#: in an env whose own packages were compiled to bytecode (by :func:`start_bytecode_compile`)
COMPILED_MARKER = ".live-code-compiled"

# Compile the env's own site-packages (argv[2:]) to bytecode, then create the marker argv[1]: only
# once every file was tried, so a compile killed half-way is started again by the next run.
_COMPILE = """\
import compileall, sys
for site_dir in sys.argv[2:]:
    compileall.compile_dir(site_dir, quiet=2, workers=1)
open(sys.argv[1], "a").close()
"""


def start_bytecode_compile(env_path: str | os.PathLike[str]) -> subprocess.Popen[bytes] | None:
    """Start compiling a new env's packages to ``.pyc`` in the background, at low priority, so the
    job starts without waiting for it (its first imports read the sources; later runs get the
    bytecode). None when the env was compiled before or has no packages of its own. Writing a
    ``.pyc`` is atomic (a rename), so concurrent compiles and a kill half-way are safe. Pass the
    result to :func:`finish_bytecode_compile`; the process is killed if the harness dies."""
    path = Path(env_path)
    own = [str(d) for d in site_dirs(path) if any(d.iterdir())]
    if not own or (path / COMPILED_MARKER).exists() or not os.access(path, os.W_OK):
        return None  # done, nothing to do, or a read-only env (a baked image compiles at prefetch)
    argv = [str(path / "bin" / "python"), "-I", "-c", _COMPILE, str(path / COMPILED_MARKER), *own]
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", os.defpath)},
            start_new_session=True,
            preexec_fn=chain_preexec(die_with_parent(), idle_priority),
        )
    except OSError as e:
        log.warning("cannot compile the env's bytecode (the job imports from source): %s", e)
        return None


def finish_bytecode_compile(
    proc: subprocess.Popen[bytes] | None, timeout: float = 0.0, reporter: Reporter | None = None
) -> bool:
    """Wait up to ``timeout`` seconds for :func:`start_bytecode_compile`'s process, then kill it
    (a later run starts it again). True if it completed."""
    if proc is None:
        return True
    if proc.poll() is None and timeout > 0:
        (reporter or log.info)(f"finishing the env's bytecode compile (at most {timeout:.0f}s more)")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        return False
    return proc.returncode == 0
