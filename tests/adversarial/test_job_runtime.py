"""User code at runtime (security-research.md section 3, "User code at runtime"; threats 31-39):
what a hostile or broken job does inside ``live-code run``, and what the harness guarantees
afterwards. Every case runs the real CLI and checks the suite's invariants (conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest

from live_code import contract, errors
from tests.helpers.adversarial import CANARY_TOKEN, JOB_OUTPUTS, Harness, job

# writes the mining result through the SDK, then the given infer-result.json bytes
_BAD_INFER = """
cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
path = os.path.join(OUT, "infer-result.json")
{make}
"""


def _infer(make: str) -> str:
    return job(_BAD_INFER.format(make=textwrap.dedent(make).strip()))


def _bytes(data: bytes) -> str:
    return _infer(f"open(path, 'wb').write({data!r})")


BOX = b'{"box": {"x": 1, "y": 1, "w": 5, "h": 5}, "class_name": "dog", "score": %s}'
# YMIR reads a NaN score (json.loads) but its protobuf parser refuses NaN in a coordinate
BOX_X = b'{"box": {"x": %s, "y": 1, "w": 5, "h": 5}, "class_name": "dog", "score": 0.5}'

# (job, error class, words the message must hold)
FAILING_JOBS = {
    "exits 0 without outputs": (job("print('did nothing')"), errors.OutputError, ["result.tsv", "missing"]),
    "exits 0 with partial outputs": (
        job("""
        cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
        sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
        """),
        errors.OutputError,
        ["infer-result.json", "missing"],
    ),
    "exits 1 after valid outputs": (job(JOB_OUTPUTS, "raise SystemExit(1)"), errors.JobError, ["exited with code 1"]),
    "killed by SIGKILL (as by the OOM killer)": (
        job("import signal; os.kill(os.getpid(), signal.SIGKILL)"),
        errors.JobError,
        ["SIGKILL"],
    ),
    "waits on stdin": (job("input('password: ')"), errors.JobError, ["exited with code 1", "EOFError"]),
    "empty infer-result.json": (_bytes(b""), errors.OutputError, ["infer-result.json", "not valid JSON"]),
    "truncated infer-result.json": (_bytes(b'{"detection": {"a'), errors.OutputError, ["not valid JSON (truncated?)"]),
    "infer-result.json not JSON": (_bytes(b"<html>oops</html>"), errors.OutputError, ["not valid JSON"]),
    "NaN coordinate": (
        _bytes(b'{"detection": {"x.jpg": {"boxes": [' + BOX_X % b"NaN" + b"]}}}"),
        errors.OutputError,
        ["NaN is not valid JSON"],
    ),
    "Infinity coordinate": (
        _bytes(b'{"detection": {"x.jpg": {"boxes": [' + BOX_X % b"-Infinity" + b"]}}}"),
        errors.OutputError,
        ["-Infinity is not valid JSON"],
    ),
    "duplicate keys": (_bytes(b'{"detection": {}, "detection": {}}'), errors.OutputError, ["duplicate keys"]),
    "lone surrogate image name": (
        _bytes(b'{"detection": {"\\ud800.jpg": {"boxes": [' + BOX % b"0.5" + b"]}}}"),
        errors.OutputError,
        ["infer-result.json", "candidate"],
    ),
    "deeply nested": (_bytes(b"[" * 100_000), errors.OutputError, ["not readable JSON"]),
    "wrong schema": (_bytes(b'{"detection": 3}'), errors.OutputError, ["detection: missing or not an object"]),
    "infer-result.json is a directory": (_infer("os.mkdir(path)"), errors.OutputError, ["Is a directory"]),
    "infer-result.json is a symlink into /in": (
        _infer("os.symlink('/in/env.yaml', path)"),
        errors.OutputError,
        ["infer-result.json", "symlink"],
    ),
    "infer-result.json is a FIFO": (
        _infer("os.mkfifo(path)"),
        errors.OutputError,
        ["infer-result.json", "not a regular file"],
    ),
    "result.tsv is a FIFO": (
        job("os.mkfifo(os.path.join(OUT, 'result.tsv'))"),
        errors.OutputError,
        ["result.tsv", "not a regular file"],
    ),
    "infer-result.json still being written by a daemon when the job exits": (
        _infer("""
        import subprocess, time
        daemon = ('import sys, time; f = open(sys.argv[1], "w"); '
                  'f.write("{\\\\"detection\\\\": {"); f.flush(); time.sleep(300)')
        subprocess.Popen([sys.executable, '-c', daemon, path], start_new_session=True)
        time.sleep(1)
        """),
        errors.OutputError,
        ["infer-result.json", "not valid JSON (truncated?)"],
    ),
    "never ends (timeout)": (job("import time; time.sleep(300)"), errors.JobError, ["timed out after 2s"]),
    "traps SIGTERM and never ends": (
        job("import signal, time", "signal.signal(signal.SIGTERM, signal.SIG_IGN)", "time.sleep(300)"),
        errors.JobError,
        ["timed out after 2s"],
    ),
}


@pytest.mark.parametrize("name", list(FAILING_JOBS))
def test_failing_job_is_a_classified_failure(harness: Harness, name: str) -> None:
    start_py, error, words = FAILING_JOBS[name]
    harness.use(harness.job_repo(start_py), live_code_timeout=2)
    out = harness.run(timeout=90)
    harness.expect_failure(out, error, *words)
    assert harness.provenance()["outcome"]["ok"] is False


SUCCEEDING_JOBS = {
    "forks children that keep running": job(
        JOB_OUTPUTS,
        """
        import subprocess
        for _ in range(3):
            subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])
        """,
    ),
    "double-forked setsid daemon holding stdout": job(
        JOB_OUTPUTS,
        """
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                import time
                while True:
                    print('daemon still here', flush=True)
                    time.sleep(0.2)
            os._exit(0)
        """,
    ),
    "prints terminal escapes and NUL bytes": job(
        JOB_OUTPUTS,
        r"""
        sys.stdout.buffer.write(b'\x1b[2J\x1b]0;pwned\x07\x00\x00 raw\r\n' * 100)
        """,
    ),
    "changes directory and writes outputs by relative paths": job("""
        cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
        os.chdir(OUT)
        open('result.tsv', 'w').write(''.join(f'{c}\\t{1.0 - n / 10}\\n' for n, c in enumerate(cands)))
        json.dump({'detection': {}}, open('infer-result.json', 'w'))
        """),
}


@pytest.mark.parametrize("name", list(SUCCEEDING_JOBS))
def test_job_that_misbehaves_but_writes_valid_outputs_succeeds_and_leaves_nothing(harness: Harness, name: str) -> None:
    harness.use(harness.job_repo(SUCCEEDING_JOBS[name]))
    harness.expect_success(harness.run(timeout=90))


# -- monitor.txt tampering (threat 37) ------------------------------------------------------------

_TAMPER = {
    "garbage": "open(MON, 'w').write('\\x00garbage\\tnot a record\\n' * 50)",
    "fake done (state 3)": "open(MON, 'w').write(f'{ENV_ID}\\t{time.time()}\\t1.0\\t3\\t0\\n')",
    "fake error (state 4)": "open(MON, 'w').write(f'{ENV_ID}\\t{time.time()}\\t0.3\\t4\\t300002\\tfake error\\n')",
    "deleted": "os.remove(MON)",
    "a directory": "os.remove(MON); os.mkdir(MON); open(os.path.join(MON, 'x'), 'w').write('x')",
    "a symlink into /in": "os.remove(MON); os.symlink('/in/env.yaml', MON)",
    "a FIFO": "os.remove(MON); os.mkfifo(MON)",
}
_TAMPER_HEAD = """
import time
MON = os.path.join(OUT, 'monitor.txt')
ENV_ID = open(MON).read().split('\\t')[0]
"""


@pytest.mark.parametrize("how", list(_TAMPER))
@pytest.mark.parametrize("ends", ["success", "failure"])
def test_harness_final_monitor_write_wins_over_a_job_that_tampers_with_it(
    harness: Harness, how: str, ends: str
) -> None:
    env_yaml = (harness.in_dir / "env.yaml").read_bytes()
    tail = "raise SystemExit(1)" if ends == "failure" else ""
    harness.use(harness.job_repo(job(JOB_OUTPUTS, _TAMPER_HEAD, _TAMPER[how], tail)))
    out = harness.run(timeout=60)
    if ends == "success":
        harness.expect_success(out)
    else:  # a valid error record the job wrote keeps its code (the SDK's write_error), nothing else
        code = 300002 if how == "fake error (state 4)" else contract.ReturnCode.CONTAINER_ERROR
        harness.expect_failure(out, errors.JobError, "exited with code 1", code=code)
    assert (harness.out_dir / "monitor.txt").is_file() and not (harness.out_dir / "monitor.txt").is_symlink()
    assert (harness.in_dir / "env.yaml").read_bytes() == env_yaml


# -- secrets (threat 38) -----------------------------------------------------------------------------

_READ_PARENT = """
import glob
found = {}
for path in [f'/proc/{os.getppid()}/environ'] + glob.glob('/proc/[0-9]*/environ'):
    try:
        data = open(path, 'rb').read()
    except OSError:
        continue
    if b'LIVE_CODE_GIT_TOKEN' in data:
        found[path] = data.decode(errors='replace')
open(os.path.join(OUT, 'stolen.json'), 'w').write(json.dumps(found))
print('stolen:', len(found), flush=True)
"""


@pytest.mark.needs_bwrap
def test_sandboxed_job_cannot_read_the_harness_environment(harness: Harness) -> None:
    harness.use(harness.job_repo(job(_READ_PARENT, JOB_OUTPUTS)))
    harness.expect_success(harness.run())
    assert json.loads((harness.out_dir / "stolen.json").read_text()) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="running the harness as another uid needs root")
def test_unsandboxed_job_of_the_same_uid_cannot_read_the_harness_environment(harness: Harness, tmp_path: Path) -> None:
    """Without bubblewrap (and in the container) the job is the harness's child, same uid, same
    pid namespace: /proc/<harness>/environ holds LIVE_CODE_GIT_TOKEN unless the harness makes
    itself non-dumpable. Run as an unprivileged uid, as YMIR runs containers (--user)."""
    from tests.helpers.jobs import AS_OTHER_USER, python_for_others, run_argv

    shared = Path(
        subprocess.run(
            ["mktemp", "-d", "/tmp/live-code-adv-XXXXXX"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    try:
        shared.chmod(0o755)
        h = Harness(shared / "h")  # pytest's tmp dirs are private to root: this task must not be
        repo = harness.job_repo(job(_READ_PARENT, JOB_OUTPUTS))
        subprocess.run(["cp", "-r", str(repo.path), str(shared / "repo")], check=True)
        h.set_config(git_url=str(shared / "repo"), git_commit=repo.sha)
        for d in (shared / "cache", h.out_dir, h.work):
            d.mkdir(exist_ok=True)
            d.chmod(0o777)
        subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)
        subprocess.run(["chown", "-R", "54321:54321", str(shared / "repo")], check=True)
        python = python_for_others(shared)
        env = h.cli_env(LIVE_CODE_CACHE=str(shared / "cache"), HOME="/nonexistent", LIVE_CODE_BASE_PYTHON=python)
        cmd = [
            *AS_OTHER_USER,
            *run_argv(h.in_dir, h.out_dir, python),
            "--work",
            str(h.work),
            "--sandbox",
            "off",
        ]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "stolen:" in res.stdout
        stolen = json.loads((h.out_dir / "stolen.json").read_text())
        assert stolen == {}, f"the job read the harness's environment: {list(stolen)}"
        assert CANARY_TOKEN not in res.stdout + res.stderr
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)


# -- what a job can still do (documented limits, SECURITY.md) ----------------------------------------


def test_job_can_still_use_the_network_during_its_run(harness: Harness) -> None:
    """Documented limit (threat 39): live-code does not cut the job off the network; the image or
    the platform must (docker --network none, an egress policy)."""
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def accept() -> None:
        server.settimeout(60)
        conn, _ = server.accept()
        received.append(conn.recv(100))
        conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    harness.use(
        harness.job_repo(
            job(
                f"""
        import socket
        socket.create_connection(('127.0.0.1', {port}), timeout=10).sendall(b'exfiltrated')
        """,
                JOB_OUTPUTS,
            )
        )
    )
    try:
        harness.expect_success(harness.run())
        thread.join(10)
    finally:
        server.close()
    assert received == [b"exfiltrated"]


@pytest.mark.needs_bwrap
def test_sandboxed_job_cannot_write_the_cache_or_in(harness: Harness) -> None:
    """In the sandbox the cache (its own env included) and /in are read-only for the job."""
    harness.use(
        harness.job_repo(
            job(
                """
        import glob
        denied = []
        for target in glob.glob(os.environ['VIRTUAL_ENV'] + '/bin/python*')[:1] + ['/in/env.yaml']:
            try:
                open(target, 'ab').write(b'# poisoned')
            except OSError as e:
                denied.append(e.strerror)
        try:
            open(os.path.join(os.path.dirname(os.environ['VIRTUAL_ENV']), 'planted'), 'w').write('x')
        except OSError as e:
            denied.append(e.strerror)
        print('denied', denied, flush=True)
        assert len(denied) == 3, denied
        """,
                JOB_OUTPUTS,
            )
        )
    )
    harness.expect_success(harness.run())
    assert not (harness.cache / "envs" / "planted").exists()


def test_unsandboxed_job_can_write_the_cache(harness: Harness) -> None:
    """Documented limit: without bubblewrap (``--sandbox off``, or an image without it) nothing
    stops a job from writing into the cache of the same uid: use the sandbox or a read-only cache
    volume when jobs are not trusted."""
    harness.use(
        harness.job_repo(
            job(
                """
        open(os.path.join(os.path.dirname(os.environ['VIRTUAL_ENV']), 'planted'), 'w').write('x')
        """,
                JOB_OUTPUTS,
            )
        )
    )
    harness.expect_success(harness.run("--sandbox", "off"))
    assert (harness.cache / "envs" / "planted").exists()


def test_killed_harness_takes_an_unsandboxed_job_and_its_children_with_it(harness: Harness) -> None:
    """SIGKILL of the harness (OOM killer, kill -9) while the job runs: the job runs in its own
    session, so nothing would deliver a signal to it; live-code's guard kills its group."""
    harness.use(
        harness.job_repo(
            job("""
        import subprocess, time
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])
        print('started', flush=True)
        time.sleep(300)
        """)
        )
    )
    live = harness.start("--sandbox", "off")
    live.wait_for("started")
    live.signal(9)
    live.finish()
    from tests.helpers.adversarial import assert_no_processes

    assert_no_processes(harness.work, harness.cache, within=5)


def test_job_output_with_secret_shaped_text_is_redacted_in_the_log(harness: Harness) -> None:
    """The harness redacts URL credentials from the job's output stream (best effort: it cannot
    know secrets the job makes up, only those it was given)."""
    harness.use(
        harness.job_repo(job(JOB_OUTPUTS, "print('clone from https://bob:hunter2x@example.com/o/r', flush=True)"))
    )
    out = harness.run()
    harness.expect_success(out)
    assert "hunter2x" not in out.output and "https://***@example.com/o/r" in out.stdout
