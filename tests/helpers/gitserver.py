"""Git servers on 127.0.0.1 for tests: ``git daemon``, ``git http-backend`` behind a tiny HTTP server
(optionally requiring a token, throttled, or failing the first requests with 503), and a server that
accepts connections and never answers.

Every server is a context manager and ``stop()`` leaves no process or thread behind.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

# The servers' own git: no user/system config, so a developer's ~/.gitconfig cannot change them.
_SERVER_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}


def make_cert(folder: Path, days: int = 2) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 valid ``days`` days and its key (``openssl`` CLI), for the
    https servers; None when openssl is missing."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            str(days),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"test server on port {port} did not start")


class StartStop:
    """``with server:`` runs the subclass's :meth:`start` and, at the end, its :meth:`stop`."""

    def start(self: _Started) -> _Started:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Started) -> _Started:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_Started = TypeVar("_Started", bound=StartStop)


class GitDaemon(StartStop):
    """``git daemon`` exporting every repository under ``base``: ``url('repo')`` -> git://..."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self) -> GitDaemon:
        self._proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.base}",
                "--export-all",
                "--informative-errors",
                str(self.base),
            ],
            env=_SERVER_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the daemon forks one child per connection
            except ProcessLookupError:
                pass
            self._proc.wait()
            self._proc = None


class HttpGitServer(StartStop):
    """``git http-backend`` (CGI) behind ``http.server``: ``url('repo')`` -> http://127.0.0.1:P/repo.

    - ``token``: every request must carry ``Authorization: Basic`` with this password (any user),
      else 401 with a Basic challenge, as GitHub/GitLab do for private repos.
    - ``v2``: pass the client's ``Git-Protocol`` header on (protocol v2, which lets a client fetch
      any commit by SHA). With ``v2=False`` the backend speaks v0, where fetching an unadvertised
      SHA depends on ``uploadpack.allow*SHA1InWant`` in the served repo.
    - ``throttle``: bytes per second for response bodies (to kill a fetch half-way).
    - ``fail_first``: answer the first N requests with 503 (a transient failure).
    - ``on_request``: called in the handler thread for every request (while git waits for it).
    """

    def __init__(
        self,
        root: Path,
        *,
        token: str | None = None,
        v2: bool = True,
        throttle: int | None = None,
        fail_first: int = 0,
    ) -> None:
        self.root = root
        self.token = token
        self.v2 = v2
        self.throttle = throttle
        self.fail_first = fail_first
        self.requests: list[str] = []
        self.auth_failures = 0
        self.on_request: Any = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def url(self, name: str, *, userinfo: str | None = None) -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}"

    def start(self) -> HttpGitServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                outer._handle(self, b"")

            def do_POST(self) -> None:
                outer._handle(self, _read_body(self))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _authorised(self, h: BaseHTTPRequestHandler) -> str | None:
        """The user name if the request carries the token, else None."""
        header = h.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if password == self.token else None

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        self.requests.append(f"{h.command} {h.path}")
        if self.on_request is not None:
            self.on_request()
        if self.fail_first > 0:
            self.fail_first -= 1
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        user = None
        if self.token is not None:
            user = self._authorised(h)
            if user is None:
                self.auth_failures += 1
                h.send_response(401)
                h.send_header("WWW-Authenticate", 'Basic realm="live-code-test"')
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        path, _, query = h.path.partition("?")
        env = {
            **_SERVER_ENV,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": h.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": h.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": user or "",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
        }
        if h.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = h.headers["Content-Encoding"]
        if self.v2 and h.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = h.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        try:
            h.send_response(status)
            for name, value in headers:
                if name.lower() != "content-length":
                    h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            step = max(1, (self.throttle or 0) // 20)
            if not self.throttle:
                h.wfile.write(payload)
                return
            for i in range(0, len(payload), step):
                if self.throttle is None:  # switched off mid-way: send the rest at once
                    h.wfile.write(payload[i:])
                    return
                h.wfile.write(payload[i : i + step])
                h.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed: that is what some tests do


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                h.rfile.readline()
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    return h.rfile.read(int(h.headers.get("Content-Length") or 0))


class OnThread(StartStop):
    """Served on ``_thread`` (a daemon thread the subclass makes) from :meth:`start` on."""

    _thread: threading.Thread

    def start(self: _Threaded) -> _Threaded:
        self._thread.start()
        return self


_Threaded = TypeVar("_Threaded", bound=OnThread)


class ServedHttp(OnThread):
    """An HTTP server on 127.0.0.1 served on a daemon thread for a ``with`` block; the subclass hands
    its server to :meth:`_serve` (``port`` is then where it listens)."""

    def _serve(self, server: ThreadingHTTPServer) -> None:
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class AcceptLoop(OnThread):
    """A TCP socket listening on 127.0.0.1 (``port``) whose connections :meth:`_accepted` takes, on a
    daemon thread for a ``with`` block; the connections it keeps in ``_held`` are closed at the end."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._accepted(conn)

    def _accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        for c in self._held:
            c.close()


class SilentServer(AcceptLoop):
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (a stalled git host)."""

    def _accepted(self, conn: socket.socket) -> None:
        self._held.append(conn)  # held open, never read from or written to


def processes_mentioning(text: str) -> Iterator[tuple[int, str]]:
    """(pid, cmdline) of every live process whose command line contains ``text``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace")
        if text in cmdline and state != "Z":
            yield int(entry), cmdline
