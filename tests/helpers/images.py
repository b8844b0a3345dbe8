"""The live-code images built with buildah and run as YMIR runs them, without a docker engine
(issue 20; base_images/README.md, "Building and testing the images without docker").

- **Stand-in bases.** The Dockerfiles' ``FROM`` images live on docker hub, out of reach here, so
  each is made from Debian packages: mmdebstrap writes a root filesystem (cached under
  ``CACHE/standins``), a Containerfile of ``tests/resources/standins`` puts what the real base has
  at the same places, and buildah tags the result with the base's own name: the Dockerfiles build
  unchanged, with ``--pull=never``.
- **Images.** ``buildah build --isolation chroot`` of each Dockerfile, from a context holding
  exactly what its ``.dockerignore`` lets docker send. Each image is tagged
  ``localhost/live-code-test/<name>:<key>``, the key hashing every build input, so a second run on
  the machine (or a second test session) reuses it; the build's time and log are kept beside.
- **Runs.** One fresh container of the image per run (``buildah from`` + ``buildah mount``), run
  under bubblewrap as YMIR runs it (ymir-contract.md 0): as a uid with no passwd entry (bwrap in a
  user namespace, started as that uid, so the image's root-owned files are not the job's), ``/in``
  read-only, ``/out`` writable, the image's ``ENV`` and nothing else unless a test names it, the
  host's ``/etc/hosts`` and ``/etc/resolv.conf`` as docker mounts them; optionally no network.

A site that reaches the internet through a TLS-inspecting proxy (this one) needs its CA in the
builds too: when ``SSL_CERT_FILE`` (or ``REQUESTS_CA_BUNDLE``, ``PIP_CERT``) names a bundle, builds
mount it over the image's CA bundle and give pip a config naming it (``build_mounts``).

``python -m tests.helpers.images build [NAME...]`` builds (or finds) the images and prints their build
times and sizes; tests/run.sh runs it before the tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from live_code.task import legacy
from tests.helpers import dockerfiles

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LIVE_CODE_TEST_CACHE") or Path.home() / ".cache" / "live-code-tests")
IMAGES_CACHE = CACHE / "images"
STANDIN_DIR = REPO / "tests" / "resources" / "standins"
#: bump when the way test images are built changes, so older builds are not reused
LAYOUT = "1"
#: where the images' test tags live (never pushed anywhere)
TEST_REPOSITORY = "localhost/live-code-test"
#: YMIR's ``--user uid:gid``: a uid with no passwd entry in the images
RUN_UID = 1000
#: where containers' root filesystems are shown to the unprivileged bubblewrap (buildah's own
#: storage is root-only)
RUN_ROOT = Path("/run/live-code-tests")
#: the 2.x executor SDK's git bundle: the builds cannot reach GitHub here (YMIR_EXC_SDK2_SOURCE)
SDK_BUNDLE = dockerfiles.SDK_BUNDLE
SDK_IN_BUILD = "/src/ymir-executor-sdk"
#: the variables that name this site's CA bundle (a TLS-inspecting proxy's CA)
SITE_CA_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
#: the image's CA bundle (Debian and Ubuntu), which builds see replaced by the site's
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class BuildError(RuntimeError):
    """An image or stand-in did not build; the message ends with the log's tail."""


@dataclass(frozen=True)
class StandIn:
    """How to make the base image a Dockerfile names, from Debian packages."""

    #: the Dockerfile's FROM, fully qualified as docker reads it (docker.io/...)
    image: str
    suite: str
    #: mmdebstrap --include
    packages: tuple[str, ...]
    containerfile: Path
    #: pip requirements downloaded on the host into the context's wheels/ (for ``python``)
    wheels: tuple[str, ...] = ()
    python: str = ""

    def key(self) -> str:
        return _digest(
            [LAYOUT, self.image, self.suite, *self.packages, *self.wheels, self.python, self.containerfile.read_bytes()]
        )


def qualified(image: str) -> str:
    """``pytorch/pytorch:tag`` -> ``docker.io/pytorch/pytorch:tag``, as docker resolves a short name."""
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


STANDINS = {
    "torch": StandIn(
        qualified(dockerfiles.base_image(dockerfiles.DOCKERFILES["torch"])),
        "bookworm",
        ("python3", "python3-venv", "libpython3.11-dev", "ca-certificates"),
        STANDIN_DIR / "pytorch.Containerfile",
        wheels=("torch==2.13.0",),
        python="3.11",
    ),
    "mxnet": StandIn(
        qualified(dockerfiles.base_image(dockerfiles.DOCKERFILES["mxnet"])),
        "bullseye",
        ("ca-certificates",),
        STANDIN_DIR / "nvidia-cuda.Containerfile",
    ),
}
#: build arguments of each test build: the CPU MXNet wheel (the image's documented CPU option), the
#: 2.x SDK from a clone mounted into the build
BUILD_ARGS = {
    "torch": {"YMIR_EXC_SDK2_SOURCE": SDK_IN_BUILD},
    "mxnet": {"YMIR_EXC_SDK2_SOURCE": SDK_IN_BUILD, "MXNET_PACKAGE": "mxnet"},
}


@dataclass(frozen=True)
class Image:
    name: str
    ref: str
    key: str
    #: seconds the build took (this session's, or the recorded one of a reused image)
    seconds: float
    reused: bool


def unavailable_reason() -> str | None:
    """Why images cannot be built and run here, or None."""
    if os.geteuid() != 0:
        return (
            "needs root: buildah builds and mounts the images as root (tests/run.sh, run as root, "
            "installs buildah, mmdebstrap and bubblewrap and runs these tests)"
        )
    for tool, package in (
        ("buildah", "buildah"),
        ("mmdebstrap", "mmdebstrap"),
        ("bwrap", "bubblewrap"),
        ("setpriv", "util-linux"),
        ("mount", "mount"),
    ):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian package {package}; tests/run.sh installs it as root)"
    probe = subprocess.run(
        _as_run_uid(["bwrap", "--unshare-user", "--ro-bind", "/", "/", "true"]), capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"bubblewrap cannot make a user namespace as uid {RUN_UID} here: {probe.stderr.strip()}"
    if not SDK_BUNDLE.is_file():
        return (
            f"needs {SDK_BUNDLE} (LIVE_CODE_SDK_BUNDLE): the image builds cannot reach GitHub for the 2.x "
            "executor SDK here (YMIR_EXC_SDK2_SOURCE)"
        )
    return None


# -- buildah ----------------------------------------------------------------------------------------


def buildah(*args: str, timeout: float = 300) -> str:
    res = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise BuildError(f"buildah {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return res.stdout.strip()


def exists(ref: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True).returncode == 0


def config(ref: str) -> dict[str, object]:
    """The image's OCI config: Env, Cmd, Entrypoint, User, Labels ..."""
    out: dict[str, object] = json.loads(buildah("inspect", "--type", "image", ref))["OCIv1"]["config"]
    return out


def layers(ref: str) -> list[str]:
    """The image's layers (their digests uncompressed), the base's first."""
    return list(json.loads(buildah("inspect", "--type", "image", ref))["OCIv1"]["rootfs"]["diff_ids"])


def image_env(ref: str) -> dict[str, str]:
    env = config(ref).get("Env") or []
    return dict(item.split("=", 1) for item in env)


def size(ref: str) -> str:
    """The image's size as ``buildah images`` shows it (its layers uncompressed, e.g. "2.05 GB")."""
    for entry in json.loads(buildah("images", "--json", ref)):
        return str(entry["size"])
    raise BuildError(f"no image {ref}")


def _build(argv: Sequence[str], log: Path, timeout: float = 1800) -> float:
    """``buildah build *argv``, its output into ``log``; the seconds it took."""
    start = time.monotonic()
    with log.open("w") as f:
        res = subprocess.run(
            ["buildah", "build", "--isolation", "chroot", "--pull=never", *argv],
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if res.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise BuildError(f"buildah build {' '.join(argv)} failed ({res.returncode}); log {log}:\n{tail}")
    return time.monotonic() - start


def _digest(parts: Sequence[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder of ``name`` on the machine at a time (CI and a developer may share it)."""
    IMAGES_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(IMAGES_CACHE / f".{name}.lock")):
        yield


def _prune(ref: str, keep: int = 2) -> None:
    """Remove all but the ``keep`` newest test images of ``ref``'s repository (each is GBs; two
    checkouts building in turn keep theirs). An image a container still uses stays."""
    repository = ref.rsplit(":", 1)[0]
    found = []
    for entry in json.loads(buildah("images", "--json")):
        names = [n for n in entry.get("names") or [] if n.rsplit(":", 1)[0] == repository]
        if names:
            found.append((int(entry.get("created", 0)), names[0]))
    for _, name in sorted(found, reverse=True)[keep:]:
        if name != ref:
            subprocess.run(["buildah", "rmi", name], capture_output=True)


def _record(name: str, key: str, seconds: float) -> None:
    path = IMAGES_CACHE / "build-times.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[f"{name}:{key[:16]}"] = round(seconds, 1)
    path.write_text(json.dumps(times, indent=1, sort_keys=True))


def _recorded(name: str, key: str) -> float:
    path = IMAGES_CACHE / "build-times.json"
    return float(json.loads(path.read_text()).get(f"{name}:{key[:16]}", 0.0)) if path.is_file() else 0.0


# -- the site's CA in builds --------------------------------------------------------------------------


def site_bundle() -> Path | None:
    """The CA bundle this site's TLS needs (its proxy's CA), when one is set."""
    for var in SITE_CA_VARS:
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def build_mounts(folder: Path, extra_ca: bytes = b"") -> list[str]:
    """``-v`` options that give a build's RUN steps this site's CA (plus ``extra_ca``): the bundle
    over the image's own (apt, git, pip with truststore), and a pip config naming it (pip on Python
    3.9 reads only certifi's bundle otherwise). Both are build-time mounts, not in the image."""
    bundle = site_bundle()
    if bundle is None and not extra_ca:
        return []
    base = bundle.read_bytes() if bundle else Path(IMAGE_CA_BUNDLE).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca-bundle.pem").write_bytes(base.rstrip(b"\n") + b"\n" + extra_ca)
    (folder / "pip.conf").write_text(f"[global]\ncert = {IMAGE_CA_BUNDLE}\n")
    return ["-v", f"{folder / 'ca-bundle.pem'}:{IMAGE_CA_BUNDLE}:ro", "-v", f"{folder / 'pip.conf'}:/etc/pip.conf:ro"]


# -- stand-in bases -------------------------------------------------------------------------------------


def _rootfs(standin: StandIn) -> Path:
    """mmdebstrap's minbase root filesystem with ``packages``, made once per machine."""
    folder = CACHE / "standins"
    folder.mkdir(parents=True, exist_ok=True)
    tar = folder / f"{standin.suite}-{_digest([standin.suite, *standin.packages])[:12]}.tar"
    if not tar.is_file():
        partial = tar.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.unlink(missing_ok=True)
        res = subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--format=tar",
                f"--include={','.join(standin.packages)}",
                standin.suite,
                str(partial),
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if res.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BuildError(f"mmdebstrap {standin.suite} failed ({res.returncode}):\n{res.stderr[-3000:]}")
        partial.rename(tar)
    return tar


def _wheels(standin: StandIn, dest: Path) -> None:
    """The stand-in's Python packages as wheels for its Python, fetched by this machine's pip (its
    index settings apply: on these machines torch==2.13.0 is a local CPU wheel)."""
    dest.mkdir()
    if not standin.wheels:
        return
    folder = CACHE / "standins" / f"wheels-py{standin.python}-{_digest(list(standin.wheels))[:12]}"
    if not folder.is_dir():
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "--python-version",
                standin.python,
                "-d",
                str(partial),
                *standin.wheels,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if res.returncode != 0:
            raise BuildError(f"pip download {' '.join(standin.wheels)} failed:\n{res.stderr[-3000:]}")
        partial.rename(folder)
    for wheel in folder.iterdir():
        _link_or_copy(wheel, dest / wheel.name)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def ensure_standin(name: str) -> tuple[str, str]:
    """The stand-in for ``name``'s base, tagged with the base's own name. (name, key)."""
    standin = STANDINS[name]
    key = standin.key()
    own = f"{TEST_REPOSITORY}/standin-{name}:{key[:16]}"
    if not exists(own):
        IMAGES_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=IMAGES_CACHE) as tmp:
            context = Path(tmp)
            _link_or_copy(_rootfs(standin), context / "rootfs.tar")
            _wheels(standin, context / "wheels")
            seconds = _build(
                ["-f", str(standin.containerfile), "-t", own, str(context)], IMAGES_CACHE / f"standin-{name}.log"
            )
        _record(f"standin-{name}", key, seconds)
        _prune(own)
    buildah("tag", own, standin.image)  # the name the Dockerfile's FROM asks for: this stand-in
    return standin.image, key


# -- the images ----------------------------------------------------------------------------------------


def context_files(dockerfile: Path) -> list[str]:
    """What docker sends for ``dockerfile``'s COPY lines: the files under each source that its
    .dockerignore lets through (repository-relative)."""
    patterns = dockerfiles.ignore_patterns(dockerfile)
    out = set()
    for sources, _ in dockerfiles.copies(dockerfile):
        for source in sources:
            src = REPO / source
            files = [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file()]
            for file in files:
                rel = file.relative_to(REPO).as_posix()
                if dockerfiles.dockerignore_allows(patterns, rel):
                    out.add(rel)
    return sorted(out)


def _sdk_clone() -> Path:
    """A clone of the SDK bundle holding the pinned commit, once per machine."""
    clone = IMAGES_CACHE / "ymir-executor-sdk"
    if not (clone / ".git").is_dir():
        partial = clone.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", str(SDK_BUNDLE), str(partial)], check=True, capture_output=True)
        subprocess.run(
            ["git", "-C", str(partial), "checkout", "-q", legacy.SDK2_COMMIT], check=True, capture_output=True
        )
        partial.rename(clone)
    return clone


def ensure_image(name: str) -> Image:
    """The torch or mxnet image built from its Dockerfile on its stand-in base (or found built)."""
    dockerfile = dockerfiles.DOCKERFILES[name]
    with _locked("build"):  # stand-ins share names across checkouts: tag and build under one lock
        _, standin_key = ensure_standin(name)
        files = context_files(dockerfile)
        args = BUILD_ARGS[name]
        parts: list[str | bytes] = [
            LAYOUT,
            standin_key,
            dockerfile.read_bytes(),
            legacy.SDK2_COMMIT,
            *sorted(f"{k}={v}" for k, v in args.items()),
        ]
        for rel in files:
            parts += [rel, (REPO / rel).read_bytes()]
        key = _digest(parts)
        ref = f"{TEST_REPOSITORY}/{name}:{key[:16]}"
        if exists(ref):
            return Image(name, ref, key, _recorded(name, key), reused=True)
        with tempfile.TemporaryDirectory(dir=IMAGES_CACHE) as tmp:
            context = Path(tmp) / "context"
            for rel in files:
                (context / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, context / rel)
            argv = [
                "-f",
                str(dockerfile),
                "-t",
                ref,
                "-v",
                f"{_sdk_clone()}:{SDK_IN_BUILD}:ro",
                *build_mounts(Path(tmp) / "site"),
            ]
            for k, v in args.items():
                argv += ["--build-arg", f"{k}={v}"]
            seconds = _build([*argv, str(context)], IMAGES_CACHE / f"{name}-{key[:16]}.log")
        _record(name, key, seconds)
        _prune(ref)
        return Image(name, ref, key, seconds, reused=False)


def build_log(image: Image) -> str:
    path = IMAGES_CACHE / f"{image.name}-{image.key[:16]}.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def _prefetch_ref(base: Image, pin: str, label: str) -> tuple[str, str]:
    key = _digest([LAYOUT, base.key, dockerfiles.DOCKERFILES["prefetch"].read_bytes(), label, pin])
    return f"{TEST_REPOSITORY}/prefetch-{base.name}:{key[:16]}", key


def prefetch_built(base: Image, pin: str, label: str) -> bool:
    return exists(_prefetch_ref(base, pin, label)[0])


def ensure_prefetch(base: Image, git_url: str, pin: str, *, extra_ca: bytes, label: str) -> Image:
    """base_images/prefetch/Dockerfile over ``base`` with ``git_url`` at ``pin`` baked in, the
    cache given to the run uid (CACHE_OWNER). ``label`` (what is served), ``pin`` and ``base`` key
    the build, not the URL: its port changes between sessions; the image keeps the URL it was
    built with as a label (``prefetched_url``), and a run with no network needs no server."""
    dockerfile = dockerfiles.DOCKERFILES["prefetch"]
    with _locked("build"):
        ref, key = _prefetch_ref(base, pin, label)
        if exists(ref):
            return Image("prefetch", ref, key, _recorded("prefetch", key), reused=True)
        with tempfile.TemporaryDirectory(dir=IMAGES_CACHE) as tmp:
            context = Path(tmp) / "context"
            context.mkdir()
            argv = [
                "-f",
                str(dockerfile),
                "-t",
                ref,
                "--label",
                f"live-code-test.git-url={git_url}",
                *build_mounts(Path(tmp) / "site", extra_ca),
            ]
            for k, v in {
                "BASE_IMAGE": base.ref,
                "GIT_URL": git_url,
                "GIT_PIN": pin,
                "CACHE_OWNER": f"{RUN_UID}:{RUN_UID}",
            }.items():
                argv += ["--build-arg", f"{k}={v}"]
            seconds = _build([*argv, str(context)], IMAGES_CACHE / f"prefetch-{key[:16]}.log")
        _record("prefetch", key, seconds)
        _prune(ref)
        return Image("prefetch", ref, key, seconds, reused=False)


def prefetched_url(image: Image) -> str:
    labels = config(image.ref).get("Labels") or {}
    return str(labels["live-code-test.git-url"])  # type: ignore[index]  # buildah's inspect output is JSON typed object


# -- running a container as YMIR does -------------------------------------------------------------------


def _as_run_uid(argv: Sequence[str]) -> list[str]:
    return ["setpriv", f"--reuid={RUN_UID}", f"--regid={RUN_UID}", "--clear-groups", *argv]


@dataclass(frozen=True)
class Bind:
    host: str
    inside: str
    read_only: bool = True


class Container:
    """A fresh container of ``ref``: its root filesystem mounted where bubblewrap, started as the
    run uid, can use it. ``with Container(ref) as c: c.run([...])``."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.env = image_env(ref)
        self.id = ""
        self.mounted = Path()
        self.root = Path()

    def __enter__(self) -> Container:
        self.id = buildah("from", "--pull-never", "--name", f"live-code-test-{uuid.uuid4().hex[:12]}", self.ref)
        try:
            self.mounted = Path(buildah("mount", self.id))
            RUN_ROOT.mkdir(mode=0o755, exist_ok=True)
            os.chmod(RUN_ROOT, 0o755)
            self.root = RUN_ROOT / self.id[-12:]
            self.root.mkdir()
            subprocess.run(["mount", "--bind", str(self.mounted), str(self.root)], check=True, capture_output=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.root != Path() and self.root.exists():
            if subprocess.run(["umount", str(self.root)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", str(self.root)], capture_output=True)  # a straggler holds it
            with contextlib.suppress(OSError):
                self.root.rmdir()
        if self.id:
            subprocess.run(["buildah", "umount", self.id], capture_output=True)
            subprocess.run(["buildah", "rm", self.id], capture_output=True)

    def path(self, inside: str) -> Path:
        """``inside`` (an absolute path in the container) on this machine."""
        return self.mounted / inside.lstrip("/")

    def _mountpoint(self, inside: str, *, file: bool) -> None:
        """What docker does for ``-v``: the target made in the container (as root) if missing."""
        target = self.path(inside)
        if target.exists() or target.is_symlink():
            return
        if file:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        binds: Sequence[Bind] = (),
        env: Mapping[str, str] = (),
        network: bool = True,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """``docker run --user 1000:1000 [-v ...] [-e ...] [--network none] IMAGE argv``."""
        binds = [*binds, Bind("/etc/resolv.conf", "/etc/resolv.conf"), Bind("/etc/hosts", "/etc/hosts")]
        for bind in binds:
            self._mountpoint(bind.inside, file=Path(bind.host).is_file())
        args = [
            "bwrap",
            "--die-with-parent",
            "--unshare-user",
            "--uid",
            str(RUN_UID),
            "--gid",
            str(RUN_UID),
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            self.id[-12:],
            "--bind",
            str(self.root),
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--perms",
            "01777",
            "--tmpfs",
            "/dev/shm",
        ]
        if not network:
            args.append("--unshare-net")
        for bind in binds:
            args += ["--ro-bind" if bind.read_only else "--bind", bind.host, bind.inside]
        # docker's environment for a uid with no passwd entry: the image's ENV, HOSTNAME, HOME=/
        full_env = {**self.env, "HOSTNAME": self.id[-12:], "HOME": "/", **dict(env)}
        args.append("--clearenv")
        for k, v in full_env.items():
            args += ["--setenv", k, v]
        args += ["--chdir", "/", "--", *argv]
        return subprocess.run(
            _as_run_uid(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )


def main(argv: Sequence[str]) -> int:
    """``build [NAME...]``: build (or find) the images, print times and sizes."""
    if not argv or argv[0] != "build":
        print("usage: python -m tests.helpers.images build [torch] [mxnet]", file=sys.stderr)
        return 2
    reason = unavailable_reason()
    if reason:
        print(f"images not built: {reason}")
        return 0
    for name in argv[1:] or ("torch", "mxnet"):
        start = time.monotonic()
        image = ensure_image(name)
        standin = STANDINS[name]
        if not image.reused:
            how = f"built in {image.seconds:.0f} s ({time.monotonic() - start:.0f} s with the stand-in base)"
        else:
            how = f"reused (built earlier{f' in {image.seconds:.0f} s' if image.seconds else ''})"
        print(f"{name}: {image.ref} {how}; {size(image.ref)} (the stand-in {standin.image}: {size(standin.image)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
