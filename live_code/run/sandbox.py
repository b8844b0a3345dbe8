"""Run a job with the task's dirs at the container paths, /in read-only and /out writable.

YMIR mounts the task's ``in`` at ``/in`` (read-only in YMIR 2.x) and ``out`` at ``/out``, and legacy
code hard-codes those paths (PyPI ``ymir-exc`` reads ``/in/env.yaml``). Outside a container we get
the same view with bubblewrap (Debian package ``bubblewrap``): a new mount namespace whose root is a
tmpfs holding binds of the host's top-level directories, plus ``/in`` and ``/out``. Nothing is
created in the host's ``/``, and it works for an unprivileged user where user namespaces are
allowed. Paths the job must not write (the live-code cache) are bound read-only on top.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from live_code import contract, util

#: host top-level entries that are not bound as they are
_SPECIAL = {"proc", "dev", "in", "out"}
#: the sandbox's first options: it is a new PID namespace whose processes die with live-code
_DIES_WITH_PARENT = ["--die-with-parent", "--unshare-pid"]


class Mounts(NamedTuple):
    in_dir: Path
    out_dir: Path
    #: host paths bound read-only on top of the host view (the cache)
    read_only: tuple[Path, ...] = ()


#: what the kernel lets an unprivileged user do with namespaces (files absent on some kernels)
_USERNS_KNOBS = (
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
)
#: the cache file a success was read from in this process (see :func:`forget_success`)
_kept_success: list[Path] = []


@functools.cache
def unavailable_reason(bwrap: str | None = None, cache_dir: Path | None = None) -> str | None:
    """Why bubblewrap cannot be used here, or None when it can (probed once per process).

    With ``cache_dir`` a success is kept there and believed while nothing it depends on changed
    (:func:`_probe_key`: the bwrap binary, kernel, uid, the namespace settings, this process's
    namespaces and seccomp), so a warm run starts no probe. A failure is never kept: the next run
    probes again, so a machine that was fixed works at once. Should a kept success be wrong all the
    same, the job's bubblewrap fails at its start and says why (``bwrap: ...``, exit code 1): the
    run fails with that as the job's error, nothing runs outside the sandbox, and the job's
    failure handling drops the kept success (:func:`forget_success`) so the next run probes.
    """
    exe = bwrap or shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    key = _probe_key(exe) if cache_dir is not None else None
    cache_file = cache_dir / "bwrap.json" if cache_dir is not None and key is not None else None
    if cache_file is not None and util.cached_answer(cache_file, key) == "works":
        _kept_success.append(cache_file)
        return None
    probe = [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "true"]
    try:
        res = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        reason: str | None = f"bubblewrap could not run: {e}"
    else:
        reason = None if res.returncode == 0 else _probe_failure(res)
    if cache_file is not None:
        if reason is None:
            util.keep_answer(cache_file, key, "works")
        else:
            with contextlib.suppress(OSError):  # a read-only cache: nothing was kept there either
                cache_file.unlink(missing_ok=True)
    return reason


def _probe_failure(res: subprocess.CompletedProcess[str]) -> str:
    detail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
    return f"bubblewrap cannot create a sandbox here ({detail}); user namespaces may be disabled"


def _probe_key(exe: str) -> dict[str, object] | None:
    """What a probe's success depends on, as a JSON value; None when part of it cannot be read."""
    stamp = util.file_stamp(exe)
    if stamp is None:
        return None
    knobs = {}
    for path in _USERNS_KNOBS:
        with contextlib.suppress(OSError):
            knobs[path] = Path(path).read_text().strip()
    try:
        # a container (docker's seccomp filter, its own namespaces) sharing the cache sees other values
        status = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("Seccomp:")]
        spaces = [os.readlink(f"/proc/self/ns/{ns}") for ns in ("user", "pid", "mnt")]
    except OSError:
        return None
    return {
        "bwrap": stamp,
        "kernel": os.uname().release,
        "uid": os.getuid(),
        "knobs": knobs,
        "seccomp": status,
        "namespaces": spaces,
    }


def forget_success() -> None:
    """Drop the success this process read from a cache (the job's bubblewrap failed to start):
    the next run probes again."""
    for cache_file in _kept_success:
        with contextlib.suppress(OSError):
            cache_file.unlink()
    _kept_success.clear()


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
