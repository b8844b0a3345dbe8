"""Hostile servers on 127.0.0.1 for the adversarial tests: git over TLS (so the real CLI, which only
takes https, can fetch from a local server with a token), a server that redirects, one that resets
the connection half-way through a response, and a package index that never answers.

Every server is a context manager; leaving it stops its threads and closes its sockets.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers.gitserver import AcceptLoop, HttpGitServer, ServedHttp, _read_body

# make_cert, re-exported: tests/test_template_detectron2.py imports it from here
from tests.helpers.gitserver import make_cert as make_cert


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class TlsGitServer(HttpGitServer):
    """``git http-backend`` over https (the CLI refuses http): same options as HttpGitServer."""

    def __init__(self, root: Path, cert: tuple[Path, Path], **kw: Any) -> None:
        super().__init__(root, **kw)
        self._ctx = _server_context(*cert)
        #: the Authorization header of every request ('' for none)
        self.auth: list[str] = []

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        self.auth.append(h.headers.get("Authorization", ""))
        super()._handle(h, body)

    def url(self, name: str, *, userinfo: str | None = None) -> str:
        return super().url(name, userinfo=userinfo).replace("http://", "https://", 1)

    def start(self) -> TlsGitServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, b"")

            def do_POST(self) -> None:
                outer._handle(self, _read_body(self))

        server = _TlsHttpServer(("127.0.0.1", 0), Handler, self._ctx)
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self


class _TlsHttpServer(ThreadingHTTPServer):
    """TLS on each accepted connection, the handshake in the handler's thread (a stalled client
    cannot block the accept loop)."""

    def __init__(self, address: tuple[str, int], handler: Any, ctx: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self._ctx = ctx

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self._ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class RedirectServer(ServedHttp):
    """Answers every request with ``status`` and ``Location: <target><path>``; records the requests
    and the Authorization headers it was sent. ``cert`` makes it https."""

    def __init__(self, target: str, *, status: int = 302, cert: tuple[Path, Path] | None = None) -> None:
        self.target = target.rstrip("/")
        self.status = status
        self.requests: list[str] = []
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                outer.auth.append(self.headers.get("Authorization", ""))
                self.send_response(outer.status)
                self.send_header("Location", outer.target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

        if cert is not None:
            self._serve(_TlsHttpServer(("127.0.0.1", 0), Handler, _server_context(*cert)))
        else:
            self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.scheme = "https" if cert is not None else "http"

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"


class ResetServer(AcceptLoop):
    """Reads a request, starts a 200 answer with a long Content-Length, sends a few bytes of it and
    resets the connection (RST, not FIN): a connection reset mid-transfer. Counts connections."""

    def __init__(self, *, cert: tuple[Path, Path] | None = None) -> None:
        super().__init__()
        self._ctx = _server_context(*cert) if cert is not None else None
        self.scheme = "https" if cert is not None else "http"
        self.connections = 0

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def _accepted(self, conn: socket.socket) -> None:
        self.connections += 1
        threading.Thread(target=self._reset, args=(conn,), daemon=True).start()

    def _reset(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self._ctx is not None:
                conn = self._ctx.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n"
                b"Content-Length: 100000\r\n\r\n001e# service=git-upload-pack\n"
            )
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


class LateRedirectGitServer(HttpGitServer):
    """A working ``git http-backend`` whose later requests (the POSTs that carry the fetch) are
    redirected to ``target``: git must follow a redirect on the initial request only."""

    def __init__(self, root: Path, target: str, **kw: Any) -> None:
        super().__init__(root, **kw)
        self.target = target.rstrip("/")
        self.redirected = 0

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        if h.command != "POST":
            super()._handle(h, body)
            return
        self.requests.append(f"{h.command} {h.path}")
        self.redirected += 1
        h.send_response(302)
        h.send_header("Location", self.target + h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()
