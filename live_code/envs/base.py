"""The base interpreter as the job env sees it: its distributions, the protected frameworks among
them, and the metadata-only stub wheels that let uv resolve against it.

Private to ``envs`` (which re-exports what callers need).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from live_code import util
from live_code.envs.installer import plain_env
from live_code.errors import EnvironmentBuildError
from live_code.record import asdict, record

#: frameworks (and the like) never replaced when the base has them
PROTECTED_NAMES = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "torchdata",
        "triton",
        "pytorch-triton",
        "xformers",
        "mmcv",
        "mmcv-full",
        "tensorrt",
        "jax",
        "jaxlib",
        "tensorflow",
        "onnxruntime-gpu",
    }
)
PROTECTED_PREFIXES = ("mxnet", "nvidia-", "cupy", "pytorch-triton", "tensorrt-")


def is_protected(name: str) -> bool:
    name = util.canonical_name(name)
    return name in PROTECTED_NAMES or name.startswith(PROTECTED_PREFIXES)


class Dist(NamedTuple):
    name: str
    version: str
    location: str
    record: str  # sha256 of the RECORD file
    requires: tuple[str, ...]
    requires_python: str
    extras: tuple[str, ...]
    files: str  # size+mtime signature of every file it installed (only when asked for)


@record
class BaseInfo:
    """What the base interpreter sees (read by running a small script with it)."""

    executable: str
    python_version: str
    implementation: str
    platform: str
    is_venv: bool
    #: the base sees the system site-packages of its interpreter
    system_site: bool
    #: for a venv base: its own site-packages, which the job env reaches through a .pth file
    venv_site_dirs: tuple[str, ...]
    dists: tuple[Dist, ...]

    @property
    def versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.dists}

    @property
    def protected(self) -> dict[str, str]:
        """name -> version of the protected distributions the base has."""
        return {d.name: d.version for d in self.dists if is_protected(d.name)}

    def fingerprint(self) -> str:
        doc = asdict(self)
        doc["dists"] = [d[:4] for d in self.dists]  # name, version, location, RECORD hash
        return sha256_json(doc)


_FINGERPRINT_SCRIPT = r"""
import hashlib, json, os, re, site, sys, sysconfig
from importlib import metadata
want = set(json.loads(sys.argv[1]))
def canon(n):
    return re.sub(r"[-_.]+", "-", n).lower()
def signature(d):
    h = hashlib.sha256()
    for f in d.files or []:
        try:
            st = os.stat(f.locate())
            h.update(("%s\0%d\0%d\n" % (f, st.st_size, st.st_mtime_ns)).encode())
        except OSError:
            h.update(("%s\0missing\n" % f).encode())
    return h.hexdigest()
dists, seen = [], set()
for d in metadata.distributions():
    md = d.metadata
    name = md.get("Name") if md is not None else None
    if not name or canon(name) in seen:
        continue
    seen.add(canon(name))
    rec = d.read_text("RECORD") or d.read_text("installed-files.txt") or ""
    dists.append([canon(name), d.version or "", str(d.locate_file("")), hashlib.sha256(rec.encode()).hexdigest(),
                  d.requires or [], md.get("Requires-Python") or "", md.get_all("Provides-Extra") or [],
                  signature(d) if canon(name) in want else ""])
venv = sys.prefix != sys.base_prefix
own = [p for p in site.getsitepackages([sys.prefix]) if os.path.isdir(p)] if venv else []
system = [p for p in site.getsitepackages([sys.base_prefix]) if p in sys.path]
print(json.dumps({"executable": sys.executable, "python_version": "%d.%d.%d" % sys.version_info[:3],
                  "implementation": sys.implementation.name, "platform": sysconfig.get_platform(),
                  "is_venv": venv, "system_site": bool(system) or not venv, "venv_site_dirs": own, "dists": dists,
                  "path": [p for p in sys.path if os.path.isdir(p)]}))
"""
#: the names in a folder of ``sys.path`` whose own mtime counts: where a distribution is recorded
_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth", ".egg")


def base_fingerprint(
    base_python: str | os.PathLike[str], *, signatures_for: Iterable[str] = (), cache_dir: Path | None = None
) -> BaseInfo:
    """Run ``base_python`` (isolated mode) to list every distribution it sees; ``signatures_for``
    names the distributions whose files get a size+mtime signature (slower for big ones).

    With ``cache_dir`` (and no ``signatures_for``) the answer is kept there and reused while the
    base looks the same (``_base_stamp``: the interpreter, its ``pyvenv.cfg``, and each folder of
    its ``sys.path`` with its listing and the mtimes of its distributions' metadata), so the
    interpreter runs only when something was installed, removed or replaced."""
    use_cache = cache_dir is not None and not signatures_for
    cache_file = _cache_file(cache_dir, base_python) if use_cache and cache_dir is not None else None
    if cache_file is not None:
        hit = _cached(cache_file, base_python)
        if hit is not None:
            return hit
    started = time.time_ns()
    doc = _run_fingerprint(base_python, signatures_for)
    path = doc.pop("path", [])
    info = _base_info(doc)
    if cache_file is not None:
        _save(cache_file, base_python, path, doc, started)
    return info


def _run_fingerprint(base_python: str | os.PathLike[str], signatures_for: Iterable[str]) -> dict[str, Any]:
    try:
        _, out, _ = util.cmd_output(
            str(base_python),
            "-I",
            "-c",
            _FINGERPRINT_SCRIPT,
            json.dumps(sorted(signatures_for)),
            env=plain_env(),
            timeout=120,
        )
    except util.CalledProcessError as e:
        msg = f"cannot read the base interpreter {base_python}: {e}"
        hint = "set LIVE_CODE_BASE_PYTHON to a working python"
        raise EnvironmentBuildError(msg, value=str(base_python), hint=hint) from None
    doc: dict[str, Any] = json.loads(out)
    return doc


def _base_info(doc: Mapping[str, Any]) -> BaseInfo:
    dists = tuple(
        Dist(n, v, loc, rec, tuple(req), rp, tuple(ex), sig) for n, v, loc, rec, req, rp, ex, sig in doc["dists"]
    )
    return BaseInfo(**{**doc, "venv_site_dirs": tuple(doc["venv_site_dirs"]), "dists": dists})


def _cache_file(cache_dir: Path, base_python: str | os.PathLike[str]) -> Path:
    return cache_dir / f"{hashlib.sha256(os.path.abspath(base_python).encode()).hexdigest()[:32]}.json"


def _base_stamp(base_python: str | os.PathLike[str], path: Iterable[str]) -> tuple[str, int] | None:
    """What changes when the base changes, and the newest mtime in it; None when part of it
    cannot be read."""
    exe = os.path.abspath(base_python)
    h, mtimes = hashlib.sha256(), [0]
    try:
        for item in (exe, os.path.realpath(exe)):
            st = os.stat(item)
            h.update(f"{item}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\n".encode())
        cfg = os.path.join(os.path.dirname(os.path.dirname(exe)), "pyvenv.cfg")
        if os.path.exists(cfg):
            mtimes.append(os.stat(cfg).st_mtime_ns)
        h.update(f"{cfg}\0{mtimes[-1]}\n".encode())
        for folder in path:
            names = sorted(os.listdir(folder))
            mtimes.append(os.stat(folder).st_mtime_ns)
            h.update(f"{folder}\0{mtimes[-1]}\0{len(names)}\n".encode())
            for name in names:
                mtime = os.lstat(os.path.join(folder, name)).st_mtime_ns if name.endswith(_METADATA_SUFFIXES) else 0
                mtimes.append(mtime)
                h.update(f"{name}\0{mtime}\n".encode())
    except OSError:
        return None
    return h.hexdigest(), max(mtimes)


def _cached(cache_file: Path, base_python: str | os.PathLike[str]) -> BaseInfo | None:
    try:
        kept = json.loads(cache_file.read_text())
        if kept["python"] != os.path.abspath(base_python):
            return None
        stamp = _base_stamp(base_python, kept["path"])
        return _base_info(kept["info"]) if stamp is not None and stamp[0] == kept["stamp"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(
    cache_file: Path, base_python: str | os.PathLike[str], path: list[str], doc: Mapping[str, Any], started: int
) -> None:
    """Keep the answer with the stamp of the base, unless the base changed since just before it
    was read (a stamp taken after such a change could stand for an answer read before it)."""
    stamp = _base_stamp(base_python, path)
    if stamp is None or stamp[1] >= started - 500_000_000:  # 0.5 s: coarse file clocks
        return
    kept = {"python": os.path.abspath(base_python), "path": path, "stamp": stamp[0], "info": doc}
    with contextlib.suppress(OSError):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        util.atomic_write(cache_file, json.dumps(kept))


def write_stubs(folder: Path, base: BaseInfo) -> None:
    """A metadata-only wheel per base distribution, so uv resolves against exactly the base's
    versions and dependencies (they are never installed: the base has them)."""
    import zipfile  # only a build writes stubs

    folder.mkdir()
    for d in base.dists:
        version = normal_version(d.version)
        if version is None:
            continue
        dist = re.sub(r"[-_.]+", "_", d.name)
        info = f"{dist}-{version}.dist-info"
        meta = "".join(
            [
                f"Metadata-Version: 2.1\nName: {d.name}\nVersion: {version}\n",
                f"Requires-Python: {d.requires_python}\n" if d.requires_python else "",
                *(f"Provides-Extra: {e}\n" for e in d.extras),
                *(f"Requires-Dist: {r}\n" for r in d.requires),
            ]
        )
        files = {
            f"{info}/METADATA": meta,
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: live-code\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            f"{info}/RECORD": f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n",
        }
        with zipfile.ZipFile(folder / f"{dist}-{version}-0-py3-none-any.whl", "w") as zf:
            for name, text in files.items():
                zf.writestr(name, text)


def site_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.glob("lib*/python*/site-packages") if p.is_dir() and not p.is_symlink())


def own_dists(path: Path) -> dict[str, str]:
    """name -> version of the distributions installed in the env itself (not the base)."""
    found: dict[str, str] = {}
    for site_dir in site_dirs(path):
        for meta in site_dir.glob("*.dist-info/METADATA"):
            head = meta.read_text(errors="replace").split("\n\n", 1)[0]
            fields = dict(re.findall(r"^(Name|Version):\s*(.+?)\s*$", head, re.M))
            if "Name" in fields:
                found[util.canonical_name(fields["Name"])] = fields.get("Version", "")
    return found


def normal_version(text: str) -> str | None:
    """``text`` normalised (PEP 440), or None when it is not a valid version."""
    from packaging.version import InvalidVersion, Version  # here, not above: util.canonical_name says why

    try:
        return str(Version(text))
    except InvalidVersion:
        return None


def sha256_json(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=list).encode()).hexdigest()
