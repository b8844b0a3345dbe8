"""Atomic file replacement.

A copy of the idea in ``live_code.util.atomic_write``: the SDK runs inside the job's environment and
may import nothing from live_code but ``contract``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

# /out is shared with the platform, which reads the files as another user.
_MODE = 0o644


def replace_file(path: str, data: str, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and ``os.replace``.

    A reader sees the old file or the whole new one. ``durable`` adds an fsync (results); progress
    updates skip it, they are frequent and the next one supersedes them.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
