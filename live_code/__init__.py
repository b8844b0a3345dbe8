"""live-code: run a YMIR task from a git repository pinned to a commit or tag."""

from __future__ import annotations

__version__ = "0.1.0"
