"""The machinery of the adversarial suite (tests/adversarial/, issue 12): the ``Harness`` that runs
the real ``live-code run`` against a hostile input, the canaries, and the invariants every run must
keep (tests/adversarial/conftest.py says which, and holds the fixtures).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from live_code import contract, errors
from live_code.commands import sample
from tests.adversarial.launch import SETTINGS_VAR
from tests.helpers.envs import write_wheel
from tests.helpers.jobs import JOB_OUTPUTS
from tests.helpers.repos import GIT_ENV, git, write_tree

ROOT = Path(__file__).resolve().parents[2]
CANARY_TOKEN = "lccanarytok7Q2f9X"  # LIVE_CODE_GIT_TOKEN
CANARY_URL = "lccanaryurl4M8k1Z"  # a token in the git URL (https tests)
CANARY_ENV = "lccanaryaws3H6v0W"  # AWS_SECRET_ACCESS_KEY: any secret of the harness's environment
CANARIES = (CANARY_TOKEN, CANARY_URL, CANARY_ENV)
JOB_ENV_DUMP = "job-environ.json"
#: what a job's environment may hold: pipeline.JOB_PASS_ENV and what the harness sets itself
JOB_ENV_ALLOWED = frozenset(
    {
        "PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TERM",
        "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "HOME",
        "TMPDIR",
        "PYTHONNOUSERSITE",
        "PYTHONUNBUFFERED",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        contract.ENV_FILE_VAR,
        contract.CONFIG_FILE_VAR,
        "LIVE_CODE_TASK",
        "PWD",  # bubblewrap sets PWD (--chdir)
        # without a sandbox: the mapped env.yaml and config.yaml for the 2.x executor SDK (fallback.job_env)
        "DEFAULT_ENV_FILE_PATH",
        "DEFAULT_CONFIG_FILE_PATH",
    }
)

# A legacy-layout job that dumps its environment into /out, then writes valid outputs for what
# the task asks through the SDK. Jobs below are built from these pieces.
JOB_HEAD = """\
import json, os, sys
from live_code import sdk
env = sdk.read_env()
OUT = env.output.root_dir
json.dump(dict(os.environ), open(os.path.join(OUT, "job-environ.json"), "w"))
"""
GOOD_JOB = JOB_HEAD + JOB_OUTPUTS


def job(*parts: str) -> str:
    """A start.py made of ``JOB_HEAD`` and the given (dedented) parts."""
    return JOB_HEAD + "".join(textwrap.dedent(p).strip("\n") + "\n" for p in parts)


@dataclass(frozen=True)
class Link:
    """A symlink in a test repo, to ``target``."""

    target: str


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Repo:
    path: Path
    sha: str

    def commit(self, files: Mapping[str, str | bytes], msg: str = "change") -> str:
        write_tree(self.path, files)
        git("add", "-A", cwd=self.path)
        git("commit", "-qm", msg, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)


class Live:
    """A harness process being watched: its merged output is read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new:
                self.lines.append(line)
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        with self._new:
            while needle not in self.text:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"the harness ended before {needle!r}:\n{self.text}")
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"never saw {needle!r}:\n{self.text}")
                self._new.wait(min(left, 0.2))

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60) -> Outcome:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # where it hangs: faulthandler (PYTHONFAULTHANDLER, set by Harness.start) prints every
            # thread's stack on SIGABRT; and no harness is left running after the test
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(10)
            raise AssertionError(f"the harness did not exit within {timeout}s; its output:\n{self.text}") from None
        self._reader.join(10)
        return Outcome(rc, self.text, self.text)


class Harness:
    """One task dir, work root and cache, and ``live-code run`` on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.task_dir = root / "task"
        self.in_dir, self.out_dir = self.task_dir / "in", self.task_dir / "out"
        self.work = root / "work"
        self.work.mkdir(parents=True)
        #: the harness's TMPDIR: whatever it or its children (git, the installer) leave there shows
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.cache = Path(os.environ["LIVE_CODE_CACHE"])
        self.allow_local = True
        self.env: dict[str, str] = {}
        self.settings: dict[str, Any] = {}
        self._repos = 0
        sample.write_sample_dataset(
            self.task_dir,
            kinds=frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}),
            fmt="voc",
            protocol=contract.PROTOCOL_1_1_0,
            images=4,
        )

    # -- inputs ----------------------------------------------------------------------------------

    def repo(self, files: Mapping[str, str | bytes | Link], *, tag: str | None = None, legacy: bool = False) -> Repo:
        """A real git repo with one commit (``start.py`` defaults to GOOD_JOB). The jobs are written
        against live_code.sdk, so the repo declares itself in a ``live-code.yaml`` (unless ``files``
        has one, or ``legacy``): the legacy layout would add what the original image carried
        (live_code/task/legacy.py: ymir_exc, loguru, opencv), which these jobs do not use."""
        self._repos += 1
        path = self.root / "repos" / f"r{self._repos}"
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)
        manifest = {} if legacy or "live-code.yaml" in files else {"live-code.yaml": "entry: python start.py\n"}
        tree = {"start.py": GOOD_JOB, **manifest, **files}
        write_tree(path, {k: v for k, v in tree.items() if not isinstance(v, Link)})
        for rel, link in tree.items():
            if isinstance(link, Link):
                (path / rel).parent.mkdir(parents=True, exist_ok=True)
                (path / rel).symlink_to(link.target)
        git("add", "-A", cwd=path)
        git("commit", "-qm", "initial", cwd=path)
        if tag:
            git("tag", tag, cwd=path)
        return Repo(path, git("rev-parse", "HEAD", cwd=path))

    def job_repo(self, start_py: str, **files: str | bytes | Link) -> Repo:
        return self.repo({"start.py": start_py, **files})

    def config(self) -> dict[str, Any]:
        return yaml.safe_load((self.in_dir / "config.yaml").read_text())

    def set_config(self, **values: Any) -> None:
        data = self.config()
        data.update(values)
        for k in [k for k, v in values.items() if v is None]:
            data.pop(k, None)
        (self.in_dir / "config.yaml").write_text(yaml.safe_dump(data))

    def use(self, repo: Repo, **values: Any) -> None:
        """Point the task at ``repo``'s commit (plus other config values)."""
        self.set_config(git_url=str(repo.path), git_commit=repo.sha, **values)

    # -- running ---------------------------------------------------------------------------------

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "LIVE_CODE_GIT_TOKEN": CANARY_TOKEN,
                "AWS_SECRET_ACCESS_KEY": CANARY_ENV,
                "LIVE_CODE_GRACE": "2",
                "TMPDIR": str(self.tmp),
            }
        )
        if self.allow_local:
            env["LIVE_CODE_ALLOW_LOCAL_REPOS"] = "1"
        if self.settings:
            env[SETTINGS_VAR] = json.dumps(self.settings)
        env.update(self.env)
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        entry = ["-m", "tests.adversarial.launch"] if self.settings else ["-m", "live_code"]
        return [
            sys.executable,
            *entry,
            "run",
            "--in",
            str(self.in_dir),
            "--out",
            str(self.out_dir),
            "--work",
            str(self.work),
            *args,
        ]

    def run(self, *args: str, timeout: float = 180, preexec: Callable[[], None] | None = None, **env: str) -> Outcome:
        res = subprocess.run(
            self.argv(*args),
            env=self.cli_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=preexec,
            cwd=self.root,
        )
        return Outcome(res.returncode, res.stdout, res.stderr)

    def start(self, *args: str, preexec: Callable[[], None] | None = None, **env: str) -> Live:
        proc = subprocess.Popen(
            self.argv(*args),
            env={**self.cli_env(**env), "PYTHONFAULTHANDLER": "1"},  # for Live.finish's dump
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.root,
            preexec_fn=preexec,
        )
        return Live(proc)

    # -- reading the results ---------------------------------------------------------------------

    def monitor(self) -> contract.MonitorRecord:
        return contract.parse_monitor((self.out_dir / "monitor.txt").read_text())

    def provenance(self) -> dict[str, Any]:
        return yaml.safe_load((self.out_dir / "live-code-provenance.yaml").read_text())

    def job_environ(self) -> dict[str, str] | None:
        path = self.out_dir / JOB_ENV_DUMP
        return json.loads(path.read_text()) if path.is_file() else None

    # -- the invariants --------------------------------------------------------------------------

    def expect_failure(
        self,
        out: Outcome,
        error: type[errors.LiveCodeError],
        *words: str,
        code: int | None = None,
        exit_code: int | None = None,
        debris_ok: bool = False,
    ) -> contract.MonitorRecord:
        """A classified failure of ``error``'s class whose message names the problem (``words``),
        with every invariant of a run kept."""
        want = error.exit_code if exit_code is None else exit_code
        assert out.returncode == want, f"exit {out.returncode}, wanted {want}:\n{out.output}"
        assert "unexpected error occurred" not in out.output, out.output
        rec = self.monitor()
        assert rec.state == contract.MonitorState.ERROR, rec
        assert rec.return_code == (error.ymir_code if code is None else code), rec
        if exit_code is None:
            assert rec.message.startswith(error.kind + ":"), rec.message
        for word in words:
            assert word in rec.message, f"{word!r} not in monitor message {rec.message!r}"
            assert word in out.stderr, f"{word!r} not in stderr:\n{out.stderr}"
        self.expect_clean(out, debris_ok=debris_ok)
        return rec

    def expect_success(self, out: Outcome) -> dict[str, Any]:
        assert out.returncode == 0, out.output
        rec = self.monitor()
        assert (rec.state, rec.percent, rec.return_code) == (contract.MonitorState.RUNNING, 1.0, 0), rec
        prov = self.provenance()
        assert prov["outcome"]["ok"] is True
        self.expect_clean(out)
        return prov

    def expect_clean(self, out: Outcome | None = None, *, debris_ok: bool = False, incomplete_ok: bool = False) -> None:
        assert_no_processes(self.task_dir, self.work, self.cache)
        crash_logs = list((self.cache / "logs").glob("crash-*")) if (self.cache / "logs").is_dir() else []
        assert crash_logs == [], crash_logs
        assert not list(self.work.glob("live-code-run-*")), list(self.work.iterdir())
        assert list(self.tmp.iterdir()) == [], f"left in TMPDIR: {list(self.tmp.iterdir())}"
        texts = [out.stdout, out.stderr] if out is not None else []
        assert_no_canary(texts, [self.out_dir, self.work, self.cache])
        environ = self.job_environ()
        if environ is not None:
            assert set(environ) <= JOB_ENV_ALLOWED, sorted(set(environ) - JOB_ENV_ALLOWED)
        check_cache(self.cache, debris_ok=debris_ok, incomplete_ok=incomplete_ok)


# -- invariants, also for tests that drive other entry points ------------------------------------


def _under(arg: str, roots: Sequence[str]) -> bool:
    return any(arg == r or arg.startswith(r + "/") or f"{r}/" in arg or arg.endswith(r) for r in roots)


def processes_under(*paths: Path) -> list[tuple[int, str]]:
    """Live processes (not zombies) whose argv or cwd is under one of ``paths``."""
    roots = [str(p) for p in paths] + [os.path.realpath(p) for p in paths]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if state != "Z" and (any(_under(a, roots) for a in args) or _under(cwd, roots)):
            found.append((int(entry), " ".join(args)))
    return found


def assert_no_processes(*paths: Path, within: float = 10.0) -> None:
    end = time.monotonic() + within
    while processes_under(*paths) and time.monotonic() < end:
        time.sleep(0.1)
    assert processes_under(*paths) == []


def _files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` but a repository's own files: a checkout the cache keeps
    (``mirrors/<id>/live-code-checkouts/<name>/tree``) holds what the repository committed, as its
    mirror does (compressed there), and what a repository commits is its author's, not a secret the
    harness was given. The checkout's ``.git`` is read like the rest."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here.name == "tree" and here.parent.parent.name == "live-code-checkouts":
            dirnames[:] = [d for d in dirnames if d == ".git"]
            continue
        for name in filenames:
            path = here / name
            if not path.is_symlink() and path.is_file():
                yield path


def assert_no_canary(texts: Sequence[str], roots: Sequence[Path], canaries: Sequence[str] = CANARIES) -> None:
    for text in texts:
        for canary in canaries:
            assert canary not in text, f"canary {canary} in the output:\n{text}"
    for root in roots:
        for path in _files(root):
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                for canary in canaries:
                    assert canary.encode() not in data, f"canary {canary} in {path}"


def _git_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.devnull, **GIT_ENV, "GIT_CONFIG_GLOBAL": os.devnull}


def check_cache(cache: Path, *, debris_ok: bool = False, incomplete_ok: bool = False) -> None:
    """The cache is intact: complete entries are whole, nothing half-built is trusted or left."""
    mirrors, envs = cache / "mirrors", cache / "envs"
    for base in (mirrors, envs):
        if not base.is_dir():
            continue
        for marker in base.glob("*.done"):
            assert (base / marker.name[:-5]).is_dir(), f"marker without entry: {marker}"
        for entry in base.iterdir():
            if entry.name.startswith("."):
                assert incomplete_ok, f"scratch dir left: {entry}"
                continue
            if not entry.is_dir():
                continue
            if not (base / f"{entry.name}.done").is_file():
                assert incomplete_ok, f"entry without its completion marker: {entry}"
                continue
            if base == envs:
                assert (entry / "live-code-env.json").is_file() and (entry / "bin" / "python").exists(), entry
            else:
                _check_mirror(entry, debris_ok)
    pins = cache / "pins.json"
    if pins.exists():
        assert isinstance(json.loads(pins.read_text()), dict)


def _check_mirror(mirror: Path, debris_ok: bool) -> None:
    env = _git_env()
    res = subprocess.run(
        ["git", "--git-dir", str(mirror), "fsck", "--no-progress", "--no-dangling"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"git fsck {mirror}:\n{res.stdout}{res.stderr}"
    refs = subprocess.run(
        ["git", "--git-dir", str(mirror), "for-each-ref", "--format=%(objectname) %(refname)", "refs/live-code/"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in refs.splitlines():
        sha, ref = line.split()
        assert ref == f"refs/live-code/{sha}", line
        kind = subprocess.run(
            ["git", "--git-dir", str(mirror), "cat-file", "-t", sha],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert kind == "commit", line
    if not debris_ok:
        debris = [p for p in mirror.rglob("*") if p.name.endswith(".lock") or p.name.startswith("tmp_")]
        assert debris == [], debris


# -- small filesystems (disk full) -----------------------------------------------------------------


def file_size_limit(nbytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: the harness and its children may not write files larger than ``nbytes``
    (RLIMIT_FSIZE; SIGXFSZ ignored, so writes fail with EFBIG instead of killing the writer)."""

    def _limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return _limit


def served(harness: Harness, repo: Repo) -> Path:
    """The directory to serve ``repo`` from (as ``<root>/proj``)."""
    root = harness.root / "served"
    root.mkdir(exist_ok=True)
    if not (root / "proj").exists():
        (root / "proj").symlink_to(repo.path)
    return root


def wheel_bytes(
    folder: Path, name: str, version: str, files: Mapping[str, str] | None = None, requires: tuple[str, ...] = ()
) -> bytes:
    return write_wheel(folder, name, version, requires, files).read_bytes()
