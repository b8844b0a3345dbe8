"""Issue 18, acceptance 4: a fallback that works. Without a sandbox every path a job reads through
the task resolves (env.yaml, config.yaml, the index files and each path in them), the paths it
writes back are the container's, and a write into in/ fails the run as in the sandbox.

The end-to-end tests run ``live-code run`` as a subprocess (bubblewrap's probe is cached per
process) in both ways of lacking a sandbox:

- ``no-bwrap``: no bubblewrap on PATH (a dir of links to every tool on PATH except ``bwrap``);
- ``bwrap-denied``: a ``bwrap`` first on PATH that fails as bubblewrap does where the kernel or
  AppArmor forbids unprivileged user namespaces (Ubuntu 24.04, most unprivileged containers). It
  stands for a kernel this machine does not have: the harness sees the same failed probe.

:data:`ROWS` is the table of repos run in both ways, each task kind in turn; a row for another repo
(the SDK's fixture repos) is appended to it (see :class:`Row`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from live_code import contract, sdk, util
from live_code.commands import local, sample
from live_code.contract import TaskKind
from live_code.errors import JobError
from live_code.run import fallback
from live_code.task import legacy
from tests.helpers.repos import git
from tests.helpers.template_runs import commit_template, configure, harness_env, probe, provenance, run, validate

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "remote_templates"
TASKS = {
    "training": frozenset({TaskKind.TRAINING}),
    "mining": frozenset({TaskKind.MINING}),
    "infer": frozenset({TaskKind.INFER}),
    "mining+infer": frozenset({TaskKind.MINING, TaskKind.INFER}),
}
#: how each way of lacking a sandbox shows in the provenance's sandbox.reason
REASONS = {
    "no-bwrap": "bubblewrap is not installed",
    "bwrap-denied": "bubblewrap cannot create a sandbox here (bwrap: setting up uid map: Permission denied)",
}
WAYS = sorted(REASONS)


# -- the table ---------------------------------------------------------------------------------


class Row(NamedTuple):
    """A repo run in fallback mode, its task kinds in turn, in both ways of lacking a sandbox.

    A later row, e.g. for an SDK fixture repo built in a test module::

        ROWS.append(Row("sdk-coco", make_coco_repo, None, ("training", "mining+infer"), fmt="coco"))

    where ``make_coco_repo(dest)`` commits the repo into the new dir ``dest``, tags it ``v1`` and
    returns ``(url, commit)`` (``tests.helpers.template_runs.commit_template`` does this for a folder).
    """

    name: str
    #: commits the repo into a new dir and tags it v1: (url, commit)
    make: Callable[[Path], tuple[str, str]]
    #: the variable naming the job's base python (skipped with the reason when unset); None: the harness's
    python_var: str | None
    #: TASKS keys, run in order; a task after "training" gets the trained model (its best stage)
    tasks: tuple[str, ...]
    protocol: str = contract.PROTOCOL_1_1_0
    fmt: str = "voc"
    #: config.yaml values of every task (fewer epochs: the table checks paths and outputs, not skill)
    config: Mapping[str, object] = {}
    #: code the base python must run, else the row is skipped saying why
    needs: str = ""
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _template(name: str) -> Callable[[Path], tuple[str, str]]:
    return lambda dest: commit_template(TEMPLATES / name, dest)


def _framework_template(name: str, python_var: str, framework: str) -> Row:
    """A template over a framework base (``python_var``, which must import ``framework``): trains for two
    epochs, then mines and infers with the model."""
    marks = (pytest.mark.slow, pytest.mark.framework, pytest.mark.registry)
    tasks = ("training", "mining+infer")
    return Row(name, _template(name), python_var, tasks, config={"epochs": 2}, needs=f"import {framework}", marks=marks)


ROWS: list[Row] = [
    _framework_template("minimal", "LIVE_CODE_TEST_FRAMEWORK_PYTHON", "torch"),
    # ymir-exc 1.1.0.523 (hard-coded /in/env.yaml) writes YMIR 1.1's formats: protocol 0.0.1, ark
    Row(
        "legacy",
        _template("legacy"),
        None,
        ("training", "mining+infer"),
        protocol=contract.PROTOCOL_0_0_1,
        fmt="ark",
        marks=(pytest.mark.registry,),
    ),
    _framework_template("mxnet", "LIVE_CODE_TEST_MXNET_PYTHON", "mxnet"),
]

# The SDK fixture repos of tests/test_legacy_repos.py (written as users wrote them for ymir-exc 1.x
# and the 2.x SDK, listing nothing): given the SDK from the wheelhouse that tests/run.sh builds.
_NEEDS_WHEELHOUSE = pytest.mark.skipif(
    not os.environ.get("LIVE_CODE_TEST_SDK_WHEELHOUSE"),
    reason="needs the SDK wheelhouse (LIVE_CODE_TEST_SDK_WHEELHOUSE, built by tests/run.sh)",
)
_USER_REPOS = Path(__file__).parent / "resources" / "user_repos"
ROWS += [
    Row(
        "ymir_exc1",
        lambda dest: commit_template(_USER_REPOS / "ymir_exc1", dest),
        None,
        ("training", "mining+infer"),
        protocol=contract.PROTOCOL_0_0_1,
        fmt="ark",
        config={"code_config": "configs/default.yaml"},
        marks=(_NEEDS_WHEELHOUSE,),
    ),
    Row(
        "ymir_exc2",
        lambda dest: commit_template(_USER_REPOS / "ymir_exc2", dest),
        None,
        ("training", "mining+infer"),
        config={"code_config": "configs/default.yaml"},
        marks=(_NEEDS_WHEELHOUSE,),
    ),
]


# -- helpers and fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH for each way of lacking a sandbox."""
    tools = tmp_path_factory.mktemp("tools-without-bwrap")
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name != "bwrap" and not (tools / name).exists() and os.access(path, os.X_OK):
                (tools / name).symlink_to(path)
    assert shutil.which("bwrap", path=str(tools)) is None and shutil.which("git", path=str(tools))
    denied = tmp_path_factory.mktemp("bwrap-denied")
    # what bubblewrap prints where unprivileged user namespaces are refused (AppArmor, a container)
    (denied / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    (denied / "bwrap").chmod(0o755)
    return {"no-bwrap": str(tools), "bwrap-denied": f"{denied}{os.pathsep}{tools}"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: each repo's env is built once for both ways."""
    return tmp_path_factory.mktemp("cache")


def _env(cache: Path, python: str, path: str) -> dict[str, str]:
    env = {**harness_env(cache, python), "PATH": path, "LIVE_CODE_SANDBOX": "auto"}
    if os.environ.get("LIVE_CODE_TEST_SDK_WHEELHOUSE"):  # what legacy repos are given, as in the images
        env[legacy.WHEELHOUSE_VAR] = os.environ["LIVE_CODE_TEST_SDK_WHEELHOUSE"]
    return env


def tree_digest(root: Path) -> str:
    """Names, modes, link targets and bytes of everything under ``root``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)}\0{st.st_mode:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(Path(path).read_bytes())
    return h.hexdigest()


def _install_model(task_dir: Path, trained: Path, protocol: str) -> list[str]:
    """The best stage of ``trained`` put into the task's in/models as YMIR does: the container paths."""
    model = local.read_model(trained / "out" / "models")
    rel = f"models/{model.stage}" if contract.allows_stage_dirs(protocol) else "models"
    (task_dir / "in" / rel).mkdir(parents=True, exist_ok=True)
    for f in model.files:
        shutil.copy2(f, task_dir / "in" / rel / f.name)
    return [f"{contract.IN_DIR}/{rel}/{f.name}" for f in model.files]


# -- the table, end to end ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "way"), [pytest.param(r, w, id=f"{r.name}-{w}", marks=r.marks) for r in ROWS for w in WAYS]
)
def test_each_task_kind_runs_in_fallback_mode(
    tmp_path: Path, cache: Path, sandbox_paths: dict[str, str], row: Row, way: str
) -> None:
    python = os.environ.get(row.python_var, "") if row.python_var else sys.executable
    if not python:
        pytest.skip(f"{row.python_var} is not set (tests/run.sh sets it)")
    why = probe(python, row.needs) if row.needs else None
    if why is not None:
        pytest.skip(f"{row.name} needs `{row.needs}` in {python}: {why}")
    repo = row.make(tmp_path / "repo")
    env = _env(cache, python, sandbox_paths[way])
    trained: Path | None = None
    for task in row.tasks:
        task_dir = tmp_path / task.replace("+", "-")
        sample.write_sample_dataset(task_dir, kinds=TASKS[task], fmt=row.fmt, protocol=row.protocol, images=8)
        values = dict(row.config)
        if trained is not None:
            key = "pretrained_model_params" if task == "training" else "model_params_path"
            values[key] = _install_model(task_dir, trained, row.protocol)
        configure(task_dir, git_url=repo[0], git_tag="v1", **values)  # as run() writes it
        digest = tree_digest(task_dir / "in")
        res = run(task_dir, env, repo, timeout=900)
        assert res.returncode == 0, f"{task}:\n{res.stdout[-6000:]}{res.stderr[-4000:]}"
        assert "not faithful to the container" in res.stderr, res.stderr
        prov = provenance(task_dir)
        assert prov["sandbox"] == {"mode": "fallback", "reason": prov["sandbox"]["reason"]}  # type: ignore[index]  # provenance read from YAML is dict[str, object]
        assert str(prov["sandbox"]["reason"]).startswith(REASONS[way])
        assert validate(task_dir) == [], task
        assert tree_digest(task_dir / "in") == digest, f"{task} changed in/"
        if TaskKind.MINING in TASKS[task]:
            rows = (task_dir / "out" / "result.tsv").read_text().splitlines()
            assert rows and all(r.startswith("/in/assets/") for r in rows)  # the container's paths
        if task == "training":
            trained = task_dir


# -- a job writing into in/ --------------------------------------------------------------------

# A legacy-layout job with valid outputs that first writes into the task's in dir, where config.yaml's
# write_into says: the in dir itself (env.yaml's root_dir) or next to the first image.
WRITING_JOB = textwrap.dedent("""
    import os
    from live_code import sdk
    env, cfg = sdk.read_env(), sdk.read_config()
    cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
    target = {"root": os.path.join(env.input.root_dir, "cache.txt"), "assets": cands[0] + ".cache"}[cfg["write_into"]]
    with open(target, "w") as f:
        f.write("a cache YMIR's read-only /in refuses")
    sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
    print("wrote", target)
""")


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("target", ["root", "assets"])
def test_a_job_writing_into_in_fails(
    tmp_path: Path, cache: Path, sandbox_paths: dict[str, str], make_repo: Callable[..., Path], way: str, target: str
) -> None:
    repo = make_repo({"start.py": WRITING_JOB}, tag="v1")
    sample.write_sample_dataset(tmp_path / "task", kinds=TASKS["mining"], images=4)
    configure(tmp_path / "task", write_into=target)
    res = run(tmp_path / "task", _env(cache, sys.executable, sandbox_paths[way]), (str(repo), _head(repo)))
    assert res.returncode == JobError.exit_code, res.stdout[-3000:] + res.stderr[-3000:]
    first = (tmp_path / "task" / "in" / "candidate-index.tsv").read_text().split()[0]
    written = "/in/cache.txt" if target == "root" else f"{first}.cache"
    expected = f"the job wrote into /in, which is read-only in YMIR: {written} (new) (found after the job"
    assert expected in res.stderr
    assert "hint: write caches and temporary files under /out or /tmp ($TMPDIR), never /in" in res.stderr
    prov = provenance(tmp_path / "task")
    assert prov["sandbox"]["in_written"] == [f"{written} (new)"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    assert prov["outcome"]["ok"] is False and "read-only in YMIR" in prov["outcome"]["error"]  # type: ignore[index]  # provenance read from YAML is dict[str, object]
    record = contract.parse_monitor((tmp_path / "task" / "out" / "monitor.txt").read_text())
    assert record.state == contract.MonitorState.ERROR and "read-only in YMIR" in record.message


def _head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo)


# -- the mapped view, piece by piece -----------------------------------------------------------


def _view(
    tmp_path: Path, kinds: frozenset[TaskKind], merged: Mapping[str, object] | None = None, **dataset: object
) -> fallback.View:
    sample.write_sample_dataset(tmp_path / "task", kinds=kinds, images=6, **dataset)  # type: ignore[arg-type]  # keyword arguments passed through as object
    config = tmp_path / "task" / "out" / "live-code-config.yaml"  # the harness's merge: config.yaml and more
    platform = yaml.safe_load((tmp_path / "task" / "in" / "config.yaml").read_text())
    config.write_text(yaml.safe_dump({**platform, **(merged or {})}))
    (tmp_path / "work").mkdir()
    return fallback.prepare(tmp_path / "task" / "in", tmp_path / "task" / "out", tmp_path / "work", config)


@pytest.mark.parametrize("fmt", ["voc", "ark", "coco"])
def test_every_path_a_training_task_names_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    view = _view(tmp_path, TASKS["training"], {"pretrained_model_params": ["/in/models/a/a.pt"]}, fmt=fmt)
    for k, v in fallback.job_env(view, {"PYTHONPATH": "/x"}).items():
        monkeypatch.setenv(k, v)
    env = sdk.read_env()
    assert env.path == str(view.env_file)
    for split in (sdk.Split.TRAINING, sdk.Split.VALIDATION):
        items = list(sdk.iter_items(split))  # reads every annotation through the mapped index file
        assert items and all(i.boxes for i in items)
        assert all(os.path.isfile(i.image_path) and i.image_path.startswith(f"{view.mapped_in}/") for i in items)
    assert env.output.models_dir == str(tmp_path / "task" / "out" / "models")
    assert sdk.read_config()["pretrained_model_params"] == [f"{view.mapped_in}/models/a/a.pt"]
    platform_config = yaml.safe_load(Path(env.input.config_file).read_text())
    assert platform_config["class_names"] == list(sample.CLASS_NAMES)
    for mapped in view.mapped_in.iterdir():  # no container path is left in the mapped copies
        if mapped.suffix in (".yaml", ".tsv"):
            text = mapped.read_text()
            assert "\t/in/" not in text and not any(ln.startswith("/in/") for ln in text.splitlines())
            assert ": /in" not in text and ": /out" not in text, mapped.name
    assert os.environ["PYTHONPATH"] == f"{view.site_dir}{os.pathsep}/x"
    assert os.environ["DEFAULT_ENV_FILE_PATH"] == str(view.env_file)
    assert os.environ["DEFAULT_CONFIG_FILE_PATH"] == str(view.mapped_in / "config.yaml")


def test_yaml_keeps_its_text_where_the_paths_map_in_place() -> None:
    text = (
        "# from the web form\ngit_tag: 1.10  # a YAML float\nmodels: ['/in/models/a.pt', \"/in/models/b.pt\"]\n"
        "root: /in\nout: {dir: /out/models}\nnot_a_path: /input/x\n"
    )
    roots = {"/in": "/data/t/in", "/out": "/data/t/out"}
    mapped = fallback.map_yaml(text, roots)
    assert mapped.startswith("# from the web form\ngit_tag: 1.10  # a YAML float\n")
    assert yaml.safe_load(mapped) == {
        "git_tag": 1.1,
        "models": ["/data/t/in/models/a.pt", "/data/t/in/models/b.pt"],
        "root": "/data/t/in",
        "out": {"dir": "/data/t/out/models"},
        "not_a_path": "/input/x",
    }


@pytest.mark.parametrize("host", ["/tmp/a b: #c/in", "/tmp/it's/in", '/tmp/"q"/in'])
def test_yaml_is_written_again_where_a_host_path_needs_quoting(host: str) -> None:
    text = "root_dir: /in\nfiles:\n- /in/x.tsv\nflow: ['/in/y']\n"
    mapped = fallback.map_yaml(text, {"/in": host, "/out": "/o"})
    assert yaml.safe_load(mapped) == {"root_dir": host, "files": [f"{host}/x.tsv"], "flow": [f"{host}/y"]}


def test_index_files_map_every_field_and_keep_their_line_ends() -> None:
    text = "/in/assets/a.png\t/in/annotations/a.xml\r\n/in/assets/b.png\n\n/elsewhere/c.png\t/in\n"
    assert fallback.map_tsv(text, {"/in": "/h/in", "/out": "/h/out"}) == (
        "/h/in/assets/a.png\t/h/in/annotations/a.xml\r\n/h/in/assets/b.png\n\n/elsewhere/c.png\t/h/in\n"
    )


def test_results_written_with_host_paths_get_the_container_paths(tmp_path: Path) -> None:
    # in/assets is a link to a cache dir, as YMIR makes it; the job may name an image in any of its forms
    sample.write_sample_dataset(tmp_path / "task", kinds=TASKS["mining+infer"], images=4)
    in_dir, out_dir = tmp_path / "task" / "in", tmp_path / "task" / "out"
    shutil.move(in_dir / "assets", tmp_path / "asset-cache")
    (in_dir / "assets").symlink_to(tmp_path / "asset-cache")
    (out_dir / "live-code-config.yaml").write_text("{}\n")
    (tmp_path / "work").mkdir()
    view = fallback.prepare(in_dir, out_dir, tmp_path / "work", out_dir / "live-code-config.yaml")
    cands = (in_dir / "candidate-index.tsv").read_text().split()
    assert len(cands) == 4
    a, b, c, d = (c.removeprefix("/in/") for c in cands)
    forms = [
        f"{view.mapped_in}/{a}",
        f"{in_dir}/{b}",
        f"{tmp_path}/asset-cache/{c.removeprefix('assets/')}",
        f"/in/{d}",
    ]
    (out_dir / "result.tsv").write_text("".join(f"{p}\t{0.5 - n / 10}\n" for n, p in enumerate(forms)))
    infer = {
        "detection": {
            forms[0]: {"boxes": []},
            forms[1]: {"boxes": []},
            os.path.basename(forms[2]): {"boxes": []},
            forms[3]: {"boxes": [{"box": {"x": 1, "y": 2, "w": 3, "h": 4}, "class_name": "cat", "score": 0.5}]},
        }
    }
    (out_dir / "infer-result.json").write_text(json.dumps(infer))
    assert fallback.unmap_outputs(view) == ["/out/result.tsv", "/out/infer-result.json"]
    assert (out_dir / "result.tsv").read_text() == "".join(f"{c}\t{0.5 - n / 10}\n" for n, c in enumerate(cands))
    keys = list(json.loads((out_dir / "infer-result.json").read_text())["detection"])
    assert keys == [cands[0], cands[1], os.path.basename(cands[2]), cands[3]]  # a basename stays one
    assert fallback.unmap_outputs(view) == []  # nothing left to map


@pytest.mark.parametrize(
    "text",
    [
        '{"detection": {"%s": {"boxes": []}, "%s": {"boxes": []}}}',  # one image under two names
        '{"detection": {"%s": {"boxes": []}, "%s": {"boxes": []}}, "x": NaN}',
        '{"detection": {"%s": {"boxes": []}, "%s": {"boxes": []}',
    ],
)
def test_results_the_gate_refuses_are_left_as_written(tmp_path: Path, text: str) -> None:
    view = _view(tmp_path, TASKS["infer"])
    cand = (tmp_path / "task" / "in" / "candidate-index.tsv").read_text().split()[0]
    out = tmp_path / "task" / "out" / "infer-result.json"
    out.write_text(text % (f"{view.mapped_in}{cand[3:]}", cand if "NaN" not in text else "other.png"))
    before = out.read_text()
    assert fallback.unmap_outputs(view) == []
    assert out.read_text() == before


def test_a_result_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    view = _view(tmp_path, TASKS["mining"])
    elsewhere = tmp_path / "elsewhere.tsv"
    elsewhere.write_text(f"{view.mapped_in}/assets/x.png\t1\n")
    (tmp_path / "task" / "out" / "result.tsv").symlink_to(elsewhere)
    assert fallback.unmap_outputs(view) == []
    assert elsewhere.read_text() == f"{view.mapped_in}/assets/x.png\t1\n"


def _first_image(view: fallback.View) -> Path:
    return next(p for p in (view.in_dir / "assets").rglob("*.png"))


# each: (what the job does to the view, the path the error names)
WRITES: dict[str, tuple[Callable[[fallback.View], object], str]] = {
    "new file next to an image": (lambda v: Path(f"{_first_image(v)}.cache").write_text("x"), "/in/assets/"),
    "index file rewritten": (lambda v: (v.in_dir / "train-index.tsv").write_text("x"), "/in/train-index.tsv (changed)"),
    "annotation removed": (
        lambda v: next(p for p in (v.in_dir / "annotations").rglob("*") if p.is_file()).unlink(),
        "/in/annotations/",
    ),
    "file made and removed": (
        lambda v: (Path(v.in_dir / "models" / "tmp").write_text("x"), (v.in_dir / "models" / "tmp").unlink()),
        "/in/models (changed)",
    ),
    "mapped env.yaml rewritten": (lambda v: v.env_file.write_text("x"), "/in/env.yaml (changed)"),
    "new file in the mapped dir": (lambda v: (v.mapped_in / "cache.txt").write_text("x"), "/in/cache.txt (new)"),
    "mode changed": (lambda v: (v.in_dir / "val-index.tsv").chmod(0o600), "/in/val-index.tsv (changed)"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_each_kind_of_write_into_in_is_found(tmp_path: Path, write: str) -> None:
    if os.geteuid() != 0 and write.startswith(("mapped", "new file in the mapped")):
        pytest.skip("the mapped copies are read-only: only root can write them")
    view = _view(tmp_path, TASKS["training"])
    before = fallback.snapshot(view)
    assert fallback.changed_paths(before, fallback.snapshot(view)) == []
    time.sleep(0.05)  # past the file system's timestamp granularity (a job runs far longer)
    action, named = WRITES[write]
    action(view)
    changes = fallback.changed_paths(before, fallback.snapshot(view))
    assert changes and any(named in c for c in changes), changes
    assert not any(c.startswith(("/in (", "/in/assets (", "/in/annotations (")) for c in changes), changes
    err = fallback.wrote_into_in(changes)
    assert err.message.startswith("the job wrote into /in, which is read-only in YMIR: ")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="switching uid needs root and setpriv")
def test_a_uid_other_than_root_is_refused_a_write_into_the_mapped_dir_at_once() -> None:
    base = Path(tempfile.mkdtemp(prefix="live-code-uid-"))  # pytest's tmp dirs are root's alone
    try:
        base.chmod(0o755)
        view = _view(base, TASKS["mining"])
        write = f"echo x > {view.mapped_in}/cache.txt"
        res = subprocess.run(
            ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups", "/bin/sh", "-c", write],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode != 0 and not (view.mapped_in / "cache.txt").exists()
        err = fallback.refused_write(view, ["some output", *res.stderr.splitlines()])
        assert err is not None, res.stderr
        assert err.message.startswith("the job wrote into /in, which is read-only in YMIR: ")
        assert "/in/cache.txt: Permission denied" in err.message and str(base) not in err.message
        assert fallback.refused_write(view, ["PermissionError: [Errno 13] Permission denied: '/root/x'"]) is None
    finally:
        util.rmtree(base)


def test_the_error_names_a_few_paths_and_counts_the_rest() -> None:
    err = fallback.wrote_into_in([f"/in/assets/{n}.cache (new)" for n in range(8)])
    assert "/in/assets/4.cache (new) and 3 more" in err.message and "5.cache" not in err.message
    assert err.value == [f"/in/assets/{n}.cache (new)" for n in range(5)]


# -- ymir-exc 1.x's hard-coded env.yaml ----------------------------------------------------------

# ymir_exc/settings.py of PyPI ymir-exc 1.1.0.523, the line that matters (the real package runs in the legacy row)
YMIR_EXC_1 = {
    "ymir_exc/__init__.py": "",
    "ymir_exc/settings.py": "DEFAULT_ENV_FILE_PATH = '/in/env.yaml'\n",
    "ymir_exc/env.py": "from ymir_exc import settings\n\ndef path():\n    return settings.DEFAULT_ENV_FILE_PATH\n",
}
SHOW = (
    "import sitecustomize, ymir_exc.env\nfrom ymir_exc.settings import DEFAULT_ENV_FILE_PATH\n"
    "print(ymir_exc.env.path(), DEFAULT_ENV_FILE_PATH, getattr(sitecustomize, 'MARK', '-'))\n"
)


def _show(tmp_path: Path, pythonpath: list[Path]) -> str:
    pkg = tmp_path / "site-packages"
    for rel, text in YMIR_EXC_1.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONNOUSERSITE": "1",
        "LIVE_CODE_ENV_FILE": "/t/fallback/in/env.yaml",
        "PYTHONPATH": os.pathsep.join(str(p) for p in [*pythonpath, pkg]),
    }
    res = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=60, check=True)
    return res.stdout.strip()


def test_ymir_exc_1_reads_the_mapped_env_yaml_and_the_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    site = tmp_path / "fallback-site"
    site.mkdir()
    shutil.copyfile(ROOT / "live_code" / "run" / "_sitecustomize.py", site / "sitecustomize.py")
    shadowed = tmp_path / "debian"
    shadowed.mkdir()
    (shadowed / "sitecustomize.py").write_text("MARK = 'chained'\n")  # a distribution's own
    assert _show(tmp_path, [site, shadowed]) == "/t/fallback/in/env.yaml /t/fallback/in/env.yaml chained"
    assert _show(tmp_path, [shadowed]) == "/in/env.yaml /in/env.yaml chained"  # without it, the container path
    assert _show(tmp_path, [site]) == "/t/fallback/in/env.yaml /t/fallback/in/env.yaml -"
