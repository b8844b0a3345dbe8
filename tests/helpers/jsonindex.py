"""A package index for the lock tests (issue 22): a static PEP 691 JSON simple index with PEP 700
``upload-time`` values, made in the test and served over plain http on 127.0.0.1, so that uv's
``--exclude-newer`` sees when each file was published. Projects and files can be added (and a
file replaced) while the server runs: each request reads the folder as it is then.

Format (PEP 691, with PEP 700's ``versions`` and ``upload-time``): ``/simple/`` lists the projects,
``/simple/<name>/`` their files with ``url``, ``hashes`` and ``upload-time``.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.helpers.gitserver import ServedHttp
from tests.helpers.site import make_wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class JsonIndex(ServedHttp):
    """``folder/files/*`` served as a PEP 691 index at :meth:`url` (``http://127.0.0.1:P/simple``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "files").mkdir(parents=True, exist_ok=True)
        #: file name -> upload time (ISO 8601, UTC)
        self.uploaded: dict[str, str] = {}
        self.requests: list[str] = []
        handler = partial(type("Handler", (_Handler,), {"index": self}), directory=str(folder))
        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), handler))

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    def publish(self, name: str, version: str, module: str, uploaded: str, *, tag: str = "py3-none-any") -> Path:
        """A wheel of ``name`` ``version`` (one module holding ``module``), published at ``uploaded``
        (``YYYY-MM-DD``); ``tag``: another wheel tag (e.g. one no Python here can install)."""
        wheel = make_wheel(self.folder / "files", name, version, module)
        if tag != "py3-none-any":
            wheel = wheel.rename(wheel.with_name(wheel.name.replace("py3-none-any", tag)))
        self.uploaded[wheel.name] = f"{uploaded}T12:00:00Z"
        return wheel

    def add_file(self, path: Path, uploaded: str) -> None:
        """Any file (an sdist) already in ``folder/files``, published at ``uploaded``."""
        self.uploaded[path.name] = f"{uploaded}T12:00:00Z"

    def project_page(self, project: str) -> dict[str, Any] | None:
        files, versions = [], set()
        for name, when in sorted(self.uploaded.items()):
            if name.endswith(".whl"):
                dist, version, _, _ = parse_wheel_filename(name)
            else:  # name-version.tar.gz
                stem = name[: -len(".tar.gz")]
                dist, version = canonicalize_name(stem.rsplit("-", 1)[0]), stem.rsplit("-", 1)[1]
            if dist != project:
                continue
            data = (self.folder / "files" / name).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            files.append(
                {"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": sha}, "upload-time": when}
            )
            versions.add(str(version))
        if not files:
            return None
        return {"meta": {"api-version": "1.1"}, "name": project, "files": files, "versions": sorted(versions)}


class _Handler(SimpleHTTPRequestHandler):
    index: JsonIndex

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.index.requests.append(path)
        if not path.startswith("/simple"):
            return super().do_GET()
        parts = [p for p in path.split("/") if p]
        if len(parts) == 1:
            names = sorted({canonicalize_name(n.split("-")[0]) for n in self.index.uploaded})
            doc: dict[str, Any] | None = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
        else:
            doc = self.index.project_page(canonicalize_name(parts[1]))
        if doc is None:
            self.send_error(404)
            return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


__all__ = ["JsonIndex", "make_wheel"]
