"""Run a job with the task's dirs at the container paths, /in read-only and /out writable.

YMIR mounts the task's ``in`` at ``/in`` (read-only in YMIR 2.x) and ``out`` at ``/out``, and legacy
code hard-codes those paths (PyPI ``ymir-exc`` reads ``/in/env.yaml``). Outside a container we get
the same view with bubblewrap (Debian package ``bubblewrap``): a new mount namespace whose root is a
tmpfs holding binds of the host's top-level directories, plus ``/in`` and ``/out``. Nothing is
created in the host's ``/``, and it works for an unprivileged user where user namespaces are
allowed. Paths the job must not write (the live-code cache) are bound read-only on top.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from live_code import contract

#: host top-level entries that are not bound as they are
_SPECIAL = {"proc", "dev", "in", "out"}
#: the sandbox's first options: it is a new PID namespace whose processes die with live-code
_DIES_WITH_PARENT = ["--die-with-parent", "--unshare-pid"]


class Mounts(NamedTuple):
    in_dir: Path
    out_dir: Path
    #: host paths bound read-only on top of the host view (the cache)
    read_only: tuple[Path, ...] = ()


@functools.cache
def unavailable_reason(bwrap: str | None = None) -> str | None:
    """Why bubblewrap cannot be used here, or None when it can (probed once per process)."""
    exe = bwrap or shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "true"]
    try:
        res = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap could not run: {e}"
    if res.returncode != 0:
        detail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
        return f"bubblewrap cannot create a sandbox here ({detail}); user namespaces may be disabled"
    return None


def host_root(skip: Collection[str], bind: Callable[[str], str] = lambda entry: "--bind") -> list[str]:
    """bubblewrap arguments that lay the host's top-level entries, but those named in ``skip``, over an
    empty ``/``: a link as the same link, a folder bound with the option ``bind(entry)`` names
    (``--bind``, or ``--ro-bind`` for a read-only one)."""
    args: list[str] = []
    for entry in sorted(os.listdir("/")):
        host = f"/{entry}"
        if entry in skip:
            continue
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += [bind(entry), host, host]
    return args


def wrap(argv: Sequence[str], mounts: Mounts, *, cwd: Path, bwrap: str | None = None) -> list[str]:
    """``argv`` wrapped in bubblewrap so the job sees ``/in`` (read-only) and ``/out`` (read-write).

    The rest of the host stays where it is, so the job's interpreter, venv and working tree resolve
    as outside. ``--unshare-pid`` with ``--die-with-parent``: when the sandbox's first process ends,
    the kernel kills everything left in it.
    """
    exe = bwrap or shutil.which("bwrap") or "bwrap"
    args = [exe, *_DIES_WITH_PARENT, "--tmpfs", "/", *host_root(_SPECIAL)]
    args += ["--proc", "/proc", "--dev-bind", "/dev", "/dev"]
    args += ["--ro-bind", str(mounts.in_dir), contract.IN_DIR, "--bind", str(mounts.out_dir), contract.OUT_DIR]
    for path in mounts.read_only:
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", str(cwd), "--", *argv]
    return args


def dies_with_parent(argv: Sequence[str]) -> bool:
    """True for a command made by :func:`wrap`: the kernel kills all of it when its parent dies,
    since bubblewrap's ``--die-with-parent`` ends the PID namespace's first process."""
    return len(argv) > 3 and os.path.basename(argv[0]) == "bwrap" and list(argv[1:3]) == _DIES_WITH_PARENT
