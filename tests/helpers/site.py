"""A site of its own for tests (issue 20): a CA made in the test, https servers on 127.0.0.1 whose
certificate only that CA signs (a static PEP 503 simple index, and git's smart http), and the
packages they serve, made in the test: a pure-Python wheel, and an sdist with C and C++ extensions
(what pycocotools, mmcv and detectron2 are to an image without their wheels).
"""

from __future__ import annotations

import hashlib
import io
import ssl
import subprocess
import tarfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers.envs import write_wheel
from tests.helpers.gitserver import HttpGitServer, ServedHttp
from tests.helpers.repos import git, write_tree


class SiteCA:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl), under ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.cert = folder / "ca.pem"
        self.server_cert = folder / "server.pem"
        self.server_key = folder / "server.key"
        key = folder / "ca.key"
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            self.cert,
            "-days",
            "3",
            "-subj",
            "/CN=live-code test site CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        csr = folder / "server.csr"
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.server_key, "-out", csr, "-subj", "/CN=127.0.0.1"
        )
        ext = folder / "server.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.cert,
            "-CAkey",
            key,
            "-CAcreateserial",
            "-days",
            "3",
            "-out",
            self.server_cert,
            "-extfile",
            ext,
        )
        for path in folder.iterdir():
            path.chmod(0o644)  # the run uid reads the CA; the keys are test-only

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        return ctx


def _openssl(*args: object) -> None:
    res = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {res.stderr}")


class HttpsStaticServer(ServedHttp):
    """``folder`` served read-only over https on 127.0.0.1: ``url('simple')``."""

    def __init__(self, folder: Path, ca: SiteCA) -> None:
        #: one line per request (what a client asked for, and the TLS failures)
        self.requests: list[str] = []
        handler = partial(type("Handler", (_QuietHandler,), {"log": self.requests}), directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.socket = ca.context().wrap_socket(server.socket, server_side=True)
        self._serve(server)

    def url(self, path: str = "") -> str:
        return f"https://127.0.0.1:{self.port}/{path}"


class _QuietHandler(SimpleHTTPRequestHandler):
    log: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        self.log.append(format % args)


class HttpsGitServer(HttpGitServer):
    """tests/helpers/gitserver.py's smart-http git server, behind TLS with ``ca``'s certificate:
    ``url('repo')`` -> https://127.0.0.1:P/repo."""

    def __init__(self, root: Path, ca: SiteCA) -> None:
        super().__init__(root)
        self.ca = ca

    def start(self) -> HttpsGitServer:
        super().start()
        assert self._server is not None
        # before any client: the listening socket is wrapped, each accepted connection speaks TLS
        self._server.socket = self.ca.context().wrap_socket(self._server.socket, server_side=True)
        return self

    def url(self, name: str, *, userinfo: str | None = None) -> str:
        return super().url(name, userinfo=userinfo).replace("http://", "https://", 1)


# -- packages ------------------------------------------------------------------------------------------


def make_wheel(dest: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel of ``name`` whose one module (named after the project) holds ``module``."""
    return write_wheel(dest, name, version, files={f"{name.replace('-', '_')}/__init__.py": module})


def simple_index(root: Path, files: list[Path]) -> Path:
    """A static PEP 503 index of ``files`` under ``root``: ``root/simple/<project>/index.html``
    linking to ``root/files/<file>#sha256=...``. Returns ``root``."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[Path]] = {}
    for path in files:
        target = root / "files" / path.name
        target.write_bytes(path.read_bytes())
        project = path.name.split("-")[0].replace("_", "-").lower()
        projects.setdefault(project, []).append(target)
    links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    (root / "simple").mkdir(exist_ok=True)
    (root / "simple" / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    for project, paths in projects.items():
        anchors = "".join(
            f'<a href="../../files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{p.name}</a>\n'
            for p in paths
        )
        (root / "simple" / project).mkdir(exist_ok=True)
        (root / "simple" / project / "index.html").write_text(
            f"<!DOCTYPE html>\n<html><body>\n{anchors}</body></html>\n"
        )
    return root


#: an sdist whose only build is from source: a C and a C++ extension, as pycocotools, mmcv and
#: detectron2 are where no wheel fits the job's Python
CEXT_NAME, CEXT_VERSION = "lc-cext-probe", "1.0"
_C_SOURCE = """\
#include <Python.h>
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b, in C"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_c", NULL, -1, methods};
PyMODINIT_FUNC PyInit__c(void) { return PyModule_Create(&module); }
"""
_CPP_SOURCE = """\
#include <Python.h>
#include <numeric>
#include <string>
#include <vector>
static PyObject *compiler(PyObject *, PyObject *) {
    std::vector<int> v{1, 2, 3, 4};
    int sum = std::accumulate(v.begin(), v.end(), 0);
    std::string s = "g++ " + std::to_string(__GNUC__) + ", sum " + std::to_string(sum);
    return PyUnicode_FromString(s.c_str());
}
static PyMethodDef methods[] = {{"compiler", compiler, METH_NOARGS, "built by C++"}, {nullptr, nullptr, 0, nullptr}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpp", nullptr, -1, methods};
PyMODINIT_FUNC PyInit__cpp(void) { return PyModule_Create(&module); }
"""
_SETUP = """\
from setuptools import Extension, setup

setup(
    name="lc-cext-probe",
    version="1.0",
    packages=["lc_cext_probe"],
    ext_modules=[Extension("lc_cext_probe._c", ["src/c.c"]),
                 Extension("lc_cext_probe._cpp", ["src/cpp.cpp"], language="c++")],
)
"""


def make_cext_sdist(dest: Path, *, native: bool = True) -> Path:
    """``lc-cext-probe==1.0`` as an sdist (no wheel exists): building it needs a C and a C++
    compiler and the job Python's headers; ``native=False``: the same package in pure Python
    (building it needs only setuptools)."""
    top = f"lc_cext_probe-{CEXT_VERSION}"
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n',
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {CEXT_NAME}\nVersion: {CEXT_VERSION}\n",
    }
    if native:
        files.update(
            {
                "setup.py": _SETUP,
                "src/c.c": _C_SOURCE,
                "src/cpp.cpp": _CPP_SOURCE,
                "lc_cext_probe/__init__.py": (
                    "from lc_cext_probe._c import add\nfrom lc_cext_probe._cpp import compiler\n"
                ),
            }
        )
    else:
        files.update(
            {
                "setup.py": _SETUP.split("    ext_modules=")[0] + ")\n",
                "lc_cext_probe/__init__.py": (
                    "def add(a, b):\n    return a + b\n\n\ndef compiler():\n    return 'none'\n"
                ),
            }
        )
    dest.mkdir(parents=True, exist_ok=True)
    sdist = dest / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return sdist


# -- a job that needs the site's index (tests/test_site_ca.py, tests/test_images_built.py) ---------

PROBE = "site-ca-probe"


def probe_job(requirement: str, module: str, value: str, message: str) -> dict[str, str]:
    """A manifest-layout repository whose one requirement is ``requirement``: the job imports ``module``,
    keeps ``str(value)`` (an expression over the module) as its model and prints ``message`` and the value."""
    start = f"""\
import os

import {module}
from live_code import sdk

env = sdk.read_env()
os.makedirs(env.output.models_dir, exist_ok=True)
with open(os.path.join(env.output.models_dir, "model.txt"), "w") as f:
    f.write(str({value}))
sdk.write_model_stage("epoch_1", ["model.txt"], 0.5)
print({message!r}, {value})
"""
    manifest = "framework: none\nentry: python start.py\nrequirements: requirements.txt\n"
    return {"live-code.yaml": manifest, "requirements.txt": f"{requirement}\n", "start.py": start}


#: a manifest-layout repository whose one requirement only the site's index has
JOB = probe_job(f"{PROBE}==1.0", "site_ca_probe", "site_ca_probe.WHERE", "job ran with")


def site_job_repo(dest: Path) -> Path:
    """``JOB`` committed and tagged v1 at ``dest``."""
    write_tree(dest, JOB)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "a job needing the site's index", cwd=dest)
    git("tag", "v1", cwd=dest)
    return dest


def probe_index(root: Path) -> Path:
    """The site's index: ``site-ca-probe==1.0``, a wheel made here."""
    wheel = make_wheel(root / "build", PROBE, "1.0", 'WHERE = "the site\'s own index"\n')
    return simple_index(root / "index", [wheel])
