"""The benchmark's git repository: a few MB, a few hundred commits, made with ``git fast-import``.

The history is deterministic (fixed seed, fixed dates), so every bench run serves the same commit
ids. The last commit adds what the three runners need, side by side:

- ``start.py``: the startup entry. Its first statement prints :data:`MARKER` (before any import);
  then it checks that every requirement is installed (numpy and PyYAML are imported, the others
  only looked up) and, under live-code, writes the infer outputs through the SDK.
- ``burn.py``: the running-overhead job: a fixed amount of CPU work interleaved with a fixed
  amount of output (``BENCH_BURN_BLOCKS`` blocks of 500 kB, ``BENCH_BURN_LOOPS`` loop turns before
  each), then, under live-code, the mining outputs.
- ``extra-requirements.txt``: the requirements, the one file all three read (the original image
  reads only this name; ``live-code.yaml`` and ``python_env.yaml`` point at it).
- ``live-code.yaml`` (entries: infer -> start.py, mining -> burn.py), ``MLproject`` and
  ``python_env.yaml`` (MLflow's python_env; ``python`` is the benchmark's interpreter version).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

MARKER = "live-code-bench: first line of the entry"
BURN_MARKER = "live-code-bench: burn started"
COMMITS = 300
TAG = "v1.0"

START_PY = f"""\
print({MARKER!r}, flush=True)  # the first statement: the time to this line is what is measured
import importlib.metadata
import os
import re

import numpy
import yaml

# every requirement is installed (imported only by name: importing them all would cost seconds)
names = [re.split(r"[=<>!~;\\[ ]", ln.strip())[0] for ln in open("extra-requirements.txt")]
versions = {{n: importlib.metadata.version(n) for n in names if n and not n.startswith("#")}}
try:  # live-code's SDK (the harness puts it on the path); the baselines run without it
    from live_code import sdk
except ImportError:
    sdk = None
if sdk is not None and os.environ.get("LIVE_CODE_ENV_FILE"):
    candidates = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    sdk.write_infer_result({{path: [] for path in candidates}})
    sdk.write_progress(1.0)
print("entry done:", ", ".join(f"{{n}} {{v}}" for n, v in sorted(versions.items())), flush=True)
"""

BURN_PY = f"""\
print({BURN_MARKER!r}, flush=True)
import os
import sys
import time

blocks = int(os.environ.get("BENCH_BURN_BLOCKS", "500"))
loops = int(os.environ.get("BENCH_BURN_LOOPS", "100000"))
block = (b"x" * 99 + b"\\n") * 5000  # 500 kB of 100-byte lines
out = sys.stdout.buffer
started = time.perf_counter()
total = 0
for _ in range(blocks):
    for i in range(loops):  # pure-Python CPU work
        total += i
    out.write(block)
out.flush()
elapsed = time.perf_counter() - started
try:
    from live_code import sdk
except ImportError:
    sdk = None
if sdk is not None and os.environ.get("LIVE_CODE_ENV_FILE"):
    candidates = [item.image_path for item in sdk.iter_items(sdk.Split.CANDIDATE)]
    sdk.write_mining_result([(path, float(n)) for n, path in enumerate(candidates)])
    sdk.write_progress(1.0)
print(f"burn done in {{elapsed:.3f}} s, cpu {{time.process_time():.3f}} s", file=sys.stderr, flush=True)
"""

LIVE_CODE_YAML = """\
# live-code manifest of the benchmark repo: infer runs the startup entry, mining the burn job
framework: none
entry:
  infer: python start.py
  mining: python burn.py
requirements: extra-requirements.txt
"""

MLPROJECT = """\
name: live-code-bench
python_env: python_env.yaml
entry_points:
  main:
    command: "python start.py"
"""


def python_env_yaml(python_version: str) -> str:
    return f'python: "{python_version}"\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r extra-requirements.txt\n'


class BenchRepo(NamedTuple):
    git_dir: Path
    commit: str
    tag: str
    pack_bytes: int
    files: int
    commits: int


def _git(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
    }
    proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, env=env, capture_output=True, check=True)
    return proc.stdout.decode()


def _module_text(rng: random.Random, name: str, version: int) -> bytes:
    words = ["boxes", "anchor", "score", "image", "batch", "epoch", "loss", "label", "stride", "grid"]
    lines = [f'"""Module {name}, revision {version}."""', "from __future__ import annotations", ""]
    for f in range(12):
        args = ", ".join(rng.sample(words, 3))
        lines += [f"def {name}_{f}({args}):", f"    total = {rng.randrange(1000)}"]
        lines += [f"    total += {rng.choice(words)} * {rng.randrange(1, 97)}" for _ in range(3)]
        lines += ["    return total", ""]
    return "\n".join(lines).encode()


def _blob(path: str, data: bytes) -> bytes:
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def _stream(requirements: str, python_version: str, commits: int) -> bytes:
    """A fast-import stream: ``commits`` commits on main, the last one adding the bench files."""
    rng = random.Random(20261124)
    modules = [f"mod{i:02d}" for i in range(80)]
    out: list[bytes] = []
    when = 1_700_000_000
    for n in range(commits):
        files: list[bytes] = []
        if n == 0:
            files += [_blob(f"src/detector/{m}.py", _module_text(rng, m, 0)) for m in modules]
            files += [_blob(f"assets/weights{k}.bin", rng.randbytes(512 * 1024)) for k in range(4)]
            files += [_blob(f"docs/page{k}.md", f"# Page {k}\n\n{'lorem ipsum ' * 400}\n".encode()) for k in range(10)]
        else:
            files += [_blob(f"src/detector/{m}.py", _module_text(rng, m, n)) for m in rng.sample(modules, 2)]
            if n % 60 == 0:
                files.append(_blob(f"assets/weights{rng.randrange(4)}.bin", rng.randbytes(512 * 1024)))
        if n == commits - 1:
            files += [
                _blob("start.py", START_PY.encode()),
                _blob("burn.py", BURN_PY.encode()),
                _blob("extra-requirements.txt", requirements.encode()),
                _blob("live-code.yaml", LIVE_CODE_YAML.encode()),
                _blob("MLproject", MLPROJECT.encode()),
                _blob("python_env.yaml", python_env_yaml(python_version).encode()),
            ]
        message = f"commit {n}: update {len(files)} files\n".encode()
        when += 3600
        out.append(b"commit refs/heads/main\n")
        out.append(f"mark :{n + 1}\ncommitter Bench <bench@example.invalid> {when} +0000\n".encode())
        out.append(f"data {len(message)}\n".encode() + message)
        if n:
            out.append(f"from :{n}\n".encode())
        out.extend(files)
        out.append(b"\n")
    return b"".join(out)


def build(dest: Path, requirements: str, python_version: str, commits: int = COMMITS) -> BenchRepo:
    """Create the bare repository ``dest`` (must not exist) and return what it serves."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--bare", "--quiet", "--template=", "--initial-branch=main", str(dest))
    _git("--git-dir", str(dest), "fast-import", "--quiet", stdin=_stream(requirements, python_version, commits))
    _git("--git-dir", str(dest), "repack", "-a", "-d", "-b", "-q")
    commit = _git("--git-dir", str(dest), "rev-parse", "refs/heads/main").strip()
    _git("--git-dir", str(dest), "tag", TAG, commit)
    # what the clients ask of it: A's blobless clone (filter), MLflow's fetch of a SHA
    for key in ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"):
        _git("--git-dir", str(dest), "config", key, "true")
    _git("--git-dir", str(dest), "config", "http.receivepack", "false")
    pack = sum(p.stat().st_size for p in (dest / "objects" / "pack").glob("*.pack"))
    files = len(_git("--git-dir", str(dest), "ls-tree", "-r", "--name-only", commit).splitlines())
    return BenchRepo(dest, commit, TAG, pack, files, commits)


if __name__ == "__main__":  # a quick look: python bench/benchrepo.py DEST
    repo = build(Path(sys.argv[1]), "numpy\n", "3.11.7")
    print(repo)
