"""Atomic file replacement for the SDK's writers: :func:`live_code.sdk.formats.files.replace_file`,
which also makes the file's directory."""

from __future__ import annotations

import os

from live_code.sdk.formats.files import replace_file as _replace


def replace_file(path: str, data: str, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` whole (the old file or the whole new one for a reader), making its
    directory first. ``durable`` adds an fsync (results); progress updates skip it, they are frequent
    and the next one supersedes them.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _replace(path, data, durable=durable)
