"""The harness's part in leaving no process behind (Linux): descendants of a job that escaped its
process group are re-parented to the harness (a child subreaper), which kills them when the job
ends, and reports only those that were still living.

Private to ``run`` (the supervisor uses it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux >= 3.4). True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


#: ``/proc/<pid>/stat`` flags bit of a process in its exit (``PF_EXITING``, include/linux/sched.h)
_PF_EXITING = 0x4


def children_of(pid: int) -> dict[int, tuple[str, int]]:
    """The children of ``pid``, each with its state letter (``Z`` for a zombie) and flags."""
    listed = _listed_children(pid)
    kids = {}
    for entry in listed if listed is not None else (e for e in os.listdir("/proc") if e.isdigit()):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # the comm field may hold spaces and parentheses: parse after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 6 and int(fields[1]) == pid:
            kids[int(entry)] = (fields[0].decode(), int(fields[6]))
    return kids


def _listed_children(pid: int) -> set[str] | None:
    """The pids that ``/proc/<pid>/task/<tid>/children`` lists for each thread of ``pid`` (a child
    belongs to the thread that forked it, or took it in as a subreaper), or None where the kernel
    has no such files (``CONFIG_PROC_CHILDREN``): then every process in ``/proc`` is read, which
    takes 1 ms for 70 processes and grows with the machine's."""
    if not os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return None
    listed: set[str] = set()
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    listed.update(f.read().decode().split())
    return listed


def _living(pid: int, state: str, flags: int) -> bool:
    """False for a zombie and for a process already on its way out (exiting, or SIGKILL pending)."""
    return state not in ("Z", "X", "x") and not flags & _PF_EXITING and not _kill_pending(pid)


def _kill_pending(pid: int) -> bool:
    """Whether SIGKILL waits for the process (its parent died and it has ``PR_SET_PDEATHSIG``
    SIGKILL, say): it ends as soon as it runs."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            masks = [line.split(":", 1)[1] for line in f if line.startswith(("SigPnd:", "ShdPnd:"))]
    except (OSError, UnicodeDecodeError):
        return False
    bit = 1 << (signal.SIGKILL - 1)
    return any(int(m, 16) & bit for m in masks)


def reap_stragglers(keep: set[int]) -> int:
    """SIGKILL the children of this process that the job left (descendants re-parented to us),
    reap them, and return how many were still living. Zombies and processes already exiting are
    only reaped: bubblewrap's first process in the sandbox, say, which the kernel kills when
    bubblewrap's outer process (the job's own child) has exited, and which is re-parented to us
    in the moment before it is gone.

    ``keep`` holds the children the harness had before the job started (a test's server, say).
    """
    if not sys.platform.startswith("linux"):
        return 0
    killed = 0
    for _ in range(50):  # a straggler may fork while we kill: repeat until none is left
        kids = {pid: st for pid, st in children_of(os.getpid()).items() if pid not in keep}
        if not kids:
            break
        for pid, (state, flags) in kids.items():
            if not _living(pid, state, flags):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                pgid = os.getpgid(pid)
                if pgid != os.getpgid(0):
                    os.killpg(pgid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                killed += 1
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return killed
