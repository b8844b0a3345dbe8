"""A file replaced whole: how the SDK writes every file of a job (results, monitor.txt, COCO files).

A reader, YMIR's included, sees the old file or the whole new one, never a part: the data goes to a
temp file in the same directory, which ``os.replace`` puts in place. The harness keeps its own copy
of these steps (``live_code.util.atomic_write``): importing any module of the SDK runs the SDK
package's ``__init__``, too slow for the harness's start.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

# /out is shared with the platform, which reads the files as another user.
READABLE = 0o644


def replace_file(path: str | os.PathLike[str], data: str, *, durable: bool = True) -> None:
    """Write ``data`` (as UTF-8, newlines as they are) to ``path`` through a temp file and ``os.replace``.

    ``durable`` fsyncs the file before the rename (results, records); progress updates skip it, they are
    frequent and the next one supersedes them. Makes the file's directory first.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
