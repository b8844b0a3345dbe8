"""Serve the bench repository over https on 127.0.0.1: ``git http-backend`` behind the tests' HTTP
server (tests/helpers/gitserver.py, reused as is), with TLS added on each accepted connection.

    python bench/gitserve.py ROOT CERT KEY      # prints the port, serves until stdin closes

Why https: it is the one network scheme all three runners accept. live-code refuses git:// and
http:// (git.DEFAULT_SCHEMES), and MLflow treats a local path or file:// as a directory to run in
place, not a repository to fetch a commit from. The clients trust the self-signed certificate
through ``GIT_SSL_CAINFO``. It runs as its own process so that serving does not share the
measuring process's interpreter lock.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from tests.helpers.gitserver import HttpGitServer, make_cert


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl``), made once per directory."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not (cert.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        if make_cert(directory, days=3650) is None:
            raise SystemExit("the bench's https git server needs the openssl command")
    return cert, key


def serve(root: Path, cert: Path, key: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = HttpGitServer(root).start()
    http = server._server  # the ThreadingHTTPServer: wrap each connection as it is accepted
    assert http is not None
    accept = http.get_request

    def get_request() -> tuple[socket.socket, object]:
        conn, addr = accept()
        # the handshake runs in the handler's thread, on its first read
        return context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    http.get_request = get_request  # type: ignore[method-assign]  # TLS on each accepted connection
    print(server.port, flush=True)
    try:
        sys.stdin.read()  # until the runner closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
