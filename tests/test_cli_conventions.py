"""The CLI behaves like pip, git and pytest (issue 23, acceptance 6): global options before and after
the command, ``--json`` documents whose keys the README lists, the documented exit codes, results
on stdout and everything else (live-code's messages, the job's output) on stderr and in the job log."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from live_code import cli
from tests.helpers.jobs import LOCAL_JOB, local_argv

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MARKER = "JOB-SAYS-HELLO-42"
LOUD_JOB = LOCAL_JOB + textwrap.dedent(f"""
    import sys
    print("{MARKER} on stdout")
    print("{MARKER} on stderr", file=sys.stderr)
""")


def run_cli(*args: str, cwd: Path, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "LIVE_CODE_BASE_PYTHON"}
    env["PYTHONPATH"] = str(ROOT)
    if cache is not None:
        env["LIVE_CODE_CACHE"] = str(cache)
    return subprocess.run(
        (sys.executable, "-m", "live_code", *args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _readme_json_keys() -> dict[str, set[str]]:
    """``- `COMMAND --json`: `key`, `key` ...`` lines of the README's JSON section."""
    section = README.split("### JSON output", 1)[1].split("\n## ", 1)[0]
    out = {}
    for m in re.finditer(r"^- `live-code ([a-z ]+) --json`: (.+)$", section, re.M):
        top = re.sub(r"\([^)]*\)", "", m.group(2))  # the keys of nested objects are in parentheses
        out[m.group(1)] = set(re.findall(r"`([a-z_]+)`", top))
    return out


def _subparsers(
    p: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _subparsers(sp, (*path, name))


# the least argv each command parses with (positional arguments and required options)
REQUIRED = {
    ("sample-dataset",): ["d"],
    ("run",): [],
    ("validate",): [],
    ("cache", "ls"): [],
    ("cache", "gc"): [],
    ("local",): ["--repo", "r@v1", "--task", "training", "--dataset", "sample"],
    ("check",): ["r"],
    ("replay",): ["w"],
    ("lock",): ["r"],
    ("init",): [],
    ("prefetch",): ["u", "v1"],
    ("report",): ["o"],
}


def test_every_command_is_in_the_table() -> None:
    leaves = {path for path, p in _subparsers(cli._parser()) if path and path != ("cache",)}
    assert leaves == set(REQUIRED)


@pytest.mark.parametrize("path", sorted(REQUIRED), ids=" ".join)
def test_global_options_go_before_or_after_the_command(path: tuple[str, ...]) -> None:
    parser = cli._parser()
    rest = REQUIRED[path]
    for argv in (["-v", *path, *rest], [*path, "-v", *rest], [*path, *rest, "--verbose"]):
        assert parser.parse_args(argv).verbose is True, argv
    for argv in (["-q", *path, *rest], [*path, *rest, "-q"]):
        args = parser.parse_args(argv)
        assert args.quiet is True and args.verbose is False, argv
    assert parser.parse_args([*path, *rest]).verbose is False
    assert parser.parse_args([*path, *rest]).json is False


@pytest.mark.parametrize("path", sorted(REQUIRED), ids=" ".join)
def test_a_command_parsed_alone_is_parsed_as_in_the_whole_line(path: tuple[str, ...]) -> None:
    """``main`` builds only the named command's parser (a run's start does not pay for the rest)."""
    whole, alone = cli._parser(), cli._parser(cli._command_in([*path]))
    assert [p for p, _ in _subparsers(alone)][1:] == [p for p, _ in _subparsers(whole) if p[:1] == path[:1]]
    helps = {p: sp.format_help() for p, sp in _subparsers(whole)}
    assert all(sp.format_help() == helps[p] for p, sp in _subparsers(alone) if p), path
    rest = REQUIRED[path]
    for argv in ([*path, *rest], ["-v", *path, *rest], [*path, *rest, "-q"]):
        assert cli._command_in(argv) == path[0]
        assert vars(alone.parse_args(argv)) == vars(whole.parse_args(argv)), argv


def test_a_run_imports_no_other_command() -> None:
    code = (
        "import sys; from live_code import cli; cli._parser(cli._command_in(['-q', 'run'])); "
        "print(sorted(m for m in sys.modules if m.startswith('live_code.commands.')))"
    )
    proc = subprocess.run((sys.executable, "-c", code), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['live_code.commands._cli']"
    assert cli._command_in(["--help"]) is None and cli._command_in(["-v", "nope", "run"]) is None


def test_every_option_and_argument_has_help() -> None:
    missing = [
        (" ".join(path), a.dest)
        for path, p in _subparsers(cli._parser())
        for a in p._actions
        if not isinstance(a, argparse._SubParsersAction) and not a.help
    ]
    assert missing == []


def test_json_is_offered_exactly_where_documented() -> None:
    with_json = {
        " ".join(path)
        for path, p in _subparsers(cli._parser())
        if any(a.dest == "json" and a.option_strings for a in p._actions)
    }
    assert with_json == set(cli.JSON_COMMANDS) == set(_readme_json_keys())


def test_exit_codes_are_in_the_help_and_the_readme() -> None:
    proc = run_cli("--help", cwd=ROOT)
    assert proc.returncode == 0
    table = README.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    for code, what in cli.EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(what)}$", proc.stdout, re.M), (code, proc.stdout)
        assert f"| {code} | {what} |" in table, code
    assert "before or after the command" in proc.stdout


def test_minus_v_and_minus_q_together_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("cache", "ls", "-v", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and "-v and -q exclude each other" in proc.stderr


# -- one real task, every command on it ----------------------------------------------------------


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conventions")
    repo = root / "repo"
    repo.mkdir()
    (repo / "start.py").write_text(LOUD_JOB)
    from tests.helpers.repos import git

    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "job", cwd=repo)
    git("tag", "v1", cwd=repo)
    proc = run_cli(
        *local_argv(f"{repo}@v1", task="mining+infer", work=root / "w", images=4),
        "--sandbox",
        "off",
        "--json",
        cwd=root,
        cache=root / "cache",
    )
    return {"root": root, "repo": repo, "work": root / "w", "proc": proc, "cache": root / "cache"}


def test_local_json_stdout_is_one_document_without_the_jobs_output(task: dict) -> None:
    proc = task["proc"]
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == _readme_json_keys()["local"]
    assert doc["ok"] is True and doc["error"] is None and doc["task_dir"] == str(task["work"])
    assert MARKER not in proc.stdout
    assert f"{MARKER} on stdout" in proc.stderr and f"{MARKER} on stderr" in proc.stderr
    log = Path(doc["job_log"]).read_text()
    assert f"{MARKER} on stdout" in log and f"{MARKER} on stderr" in log


def test_local_text_results_on_stdout_messages_on_stderr(task: dict, tmp_path: Path) -> None:
    proc = run_cli(
        *local_argv(f"{task['repo']}@v1", task="infer", work=tmp_path / "w", images=2),
        "--sandbox",
        "off",
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"task dir:   {tmp_path / 'w'}" in proc.stdout and "infer succeeded" in proc.stdout
    assert MARKER not in proc.stdout and MARKER in proc.stderr
    assert "done: outputs valid" in task["proc"].stderr and "done: outputs valid" not in proc.stderr, (
        "-q: warnings only, no info messages"
    )


def test_validate_json(task: dict) -> None:
    work = task["work"]
    proc = run_cli("validate", "--in", str(work / "in"), "--out", str(work / "out"), "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == _readme_json_keys()["validate"] and doc["ok"] is True and doc["kinds"] == "mining+infer"
    (work / "out" / "result.tsv").rename(work / "out" / "result.tsv.bak")
    try:
        proc = run_cli("validate", "--in", str(work / "in"), "--out", str(work / "out"), "--json", cwd=work)
        doc = json.loads(proc.stdout)
        assert proc.returncode == 6 and doc["ok"] is False
        assert any(p["severity"] == "error" and "result.tsv" in p["message"] for p in doc["problems"])
    finally:
        (work / "out" / "result.tsv.bak").rename(work / "out" / "result.tsv")


def test_cache_ls_json(task: dict) -> None:
    proc = run_cli("cache", "ls", "--json", cwd=task["root"], cache=task["cache"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == _readme_json_keys()["cache ls"]
    assert doc["root"] == str(task["cache"]) and len(doc["entries"]) >= 2, doc  # the repo's mirror and env
    assert all(isinstance(e["size"], int) and e["complete"] is True for e in doc["entries"])
    assert doc["total_size"] == sum(e["size"] for e in doc["entries"])


def test_check_json_static(task: dict) -> None:
    proc = run_cli("check", f"{task['repo']}@v1", "--static", "--json", cwd=task["root"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == _readme_json_keys()["check"] and doc["ok"] is True
    assert {"check", "status", "detail", "fix"} == set(doc["findings"][0])


def test_report_json(task: dict) -> None:
    proc = run_cli("report", str(task["work"] / "out"), "--json", "--dest", str(task["root"] / "rep"), cwd=task["root"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == _readme_json_keys()["report"] and Path(doc["html"]).is_file()


def test_replay_of_the_same_task_exits_0_and_keeps_stdout_clean(task: dict) -> None:
    proc = run_cli("replay", str(task["work"]), "--sandbox", "off", cwd=task["root"], cache=task["cache"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outputs identical to the original" in proc.stdout and MARKER not in proc.stdout
    assert MARKER in (task["work"] / "replay-1" / "job.log").read_text()
    page = task["work"] / "replay-1" / "report" / "report.html"
    assert f"report of both runs: {page}" in proc.stdout and page.is_file()


# -- each documented exit code -------------------------------------------------------------------


def _job_repo(root: Path, name: str, start: str) -> Path:
    """A folder repository ``root/name`` whose job is ``start`` (made once per test folder)."""
    repo = root / name
    if not repo.exists():
        repo.mkdir()
        (repo / "start.py").write_text(start)
    return repo


def _bad_job(root: Path) -> Path:
    return _job_repo(root, "bad", "import sys\nprint('dying')\nsys.exit(3)\n")


def _no_outputs(root: Path) -> Path:
    return _job_repo(root, "lazy", "print('did nothing')\n")


EXIT_CASES: dict[str, tuple[int, Callable[[dict, Path], list[str]]]] = {
    "usage: unknown option": (2, lambda t, d: ["cache", "ls", "--no-such-option"]),
    "config: a --config that is not there": (
        2,
        lambda t, d: [
            *local_argv(f"{t['repo']}@v1", task="infer", work=d / "w"),
            "--config",
            str(d / "nope.yaml"),
        ],
    ),
    "config: a --dataset that is not there": (
        2,
        lambda t, d: local_argv(f"{t['repo']}@v1", task="infer", dataset=str(d / "no-data"), work=d / "w"),
    ),
    "source: a tag that is not there": (
        3,
        lambda t, d: local_argv(f"{t['repo']}@v9", task="infer", work=d / "w"),
    ),
    "job: the job exits 3": (
        5,
        lambda t, d: [
            *local_argv(_bad_job(d), task="infer", work=d / "w", images=2),
            "--sandbox",
            "off",
        ],
    ),
    "outputs: the job writes nothing": (
        6,
        lambda t, d: [
            *local_argv(_no_outputs(d), task="infer", work=d / "w", images=2),
            "--sandbox",
            "off",
        ],
    ),
    "check found problems": (1, lambda t, d: ["check", str(_no_outputs(d)), "--sandbox", "off"]),
    "dataset: a folder without images": (
        8,
        lambda t, d: local_argv(f"{t['repo']}@v1", task="infer", dataset=str(_empty(d)), work=d / "w"),
    ),
    "environment: a torch repo over a base without torch": (
        4,
        lambda t, d: local_argv(_torch_repo(d), task="infer", work=d / "w"),
    ),
}


def _empty(root: Path) -> Path:
    (root / "no-images").mkdir(exist_ok=True)
    (root / "no-images" / "readme.txt").write_text("no pictures here\n")
    return root / "no-images"


def _torch_repo(root: Path) -> Path:
    if subprocess.run((sys.executable, "-c", "import torch"), capture_output=True).returncode == 0:
        pytest.skip("live-code's own interpreter has torch: it is a valid base here")
    repo = root / "torchy"
    repo.mkdir(exist_ok=True)
    (repo / "live-code.yaml").write_text("framework: torch\nentry: python start.py\n")
    (repo / "start.py").write_text("import torch\n")
    return repo


@pytest.mark.parametrize("case", sorted(EXIT_CASES))
def test_documented_exit_code(case: str, task: dict, tmp_path: Path) -> None:
    code, argv = EXIT_CASES[case]
    proc = run_cli(*argv(task, tmp_path), cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert code in dict(cli.EXIT_CODES)
    assert "Traceback" not in proc.stderr
    assert "dying" not in proc.stdout and "did nothing" not in proc.stdout


def test_json_error_document_on_a_refused_local(task: dict, tmp_path: Path) -> None:
    proc = run_cli(
        *local_argv(f"{task['repo']}@v1", task="infer", dataset=str(tmp_path / "none")),
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 2 and "--dataset" in doc["error"]["message"]
    assert "error: config-error" in proc.stderr


def test_exit_7_when_the_cache_cannot_be_used(task: dict, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli(
        *local_argv(f"{task['repo']}@v1", task="infer", work=tmp_path / "w"),
        cwd=tmp_path,
        cache=blocker / "cache",
    )
    assert proc.returncode == 7, proc.stderr
    assert "cache-error" in proc.stderr and "LIVE_CODE_CACHE" in proc.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_exit_code_of_a_stopped_run(signum: int, code: int, task: dict, tmp_path: Path) -> None:
    repo = tmp_path / "slow"
    repo.mkdir()
    (repo / "start.py").write_text("import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "LIVE_CODE_BASE_PYTHON"}
    env.update(PYTHONPATH=str(ROOT), LIVE_CODE_CACHE=str(task["cache"]))
    proc = subprocess.Popen(
        (
            sys.executable,
            "-m",
            "live_code",
            *local_argv(str(repo), task="infer", work=tmp_path / "w", images=2),
            "--sandbox",
            "off",
        ),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        log = tmp_path / "w" / "job.log"
        while not (log.is_file() and "sleeping" in log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "the job never started"
            time.sleep(0.2)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert code in dict(cli.EXIT_CODES) or code == 128 + signal.SIGTERM
