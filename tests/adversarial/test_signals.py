"""Fault injection with real signals on the real CLI (threats 20, 22, 33, 40, 41; section 3
"SIGTERM / SIGKILL to the harness"): at each phase (fetch, install, run, output check) the harness
gets SIGTERM (the platform's ``docker stop``) or SIGKILL (the OOM killer, node loss). The phase is
seen from the harness's own output; each phase is made long enough to be caught in it (a throttled
git server, a package with 3000 modules, a sleeping job, a large result to validate).

SIGTERM: exit 143, monitor.txt state 4 "stopped by SIGTERM", nothing left behind.
SIGKILL: no process of the run survives (git may finish its fetch, holding the mirror's lock),
and a rerun succeeds on the same cache, which is then intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from live_code import contract, errors
from tests.adversarial.servers import TlsGitServer
from tests.helpers.adversarial import (
    JOB_OUTPUTS,
    Harness,
    Outcome,
    assert_no_processes,
    check_cache,
    job,
    served,
    wheel_bytes,
)

pytestmark = pytest.mark.slow

_SLOW_OUTPUT = """
cands = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)]
sdk.write_mining_result([(c, float(n)) for n, c in enumerate(cands)])
names = [os.path.basename(c) for c in cands]
box = '{"box": {"x": 1, "y": 1, "w": 5, "h": 5}, "class_name": "dog", "score": 0.5}'
with open(os.path.join(OUT, 'infer-result.json'), 'w') as f:
    images = ('"%s": {"boxes": [%s]}' % (n, ', '.join([box] * 150_000)) for n in names)
    f.write('{"detection": {' + ', '.join(images) + '}}')
sdk.write_progress(1.0)
print('job finished', flush=True)
"""


class Phase:
    """How to make a run linger in one phase, and the output line that says it is there."""

    def __init__(self, harness: Harness, stack: contextlib.ExitStack, cert: tuple[Path, Path]) -> None:
        self.harness, self.stack, self.cert = harness, stack, cert
        self.server: TlsGitServer | None = None

    def fetch(self) -> str:
        repo = self.harness.repo({"weights.bin": os.urandom(3 << 20)})  # incompressible: the throttle holds
        self.harness.env["GIT_SSL_CAINFO"] = str(self.cert[0])
        self.harness.allow_local = False
        self.server = self.stack.enter_context(TlsGitServer(served(self.harness, repo), self.cert, throttle=150_000))
        self.harness.set_config(git_url=self.server.url("proj"), git_commit=repo.sha)
        return "live-code: source: https://"

    def install(self) -> str:
        body = "".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(30))
        files = {**{f"slowpkg/m{i}.py": body for i in range(3000)}, "slowpkg/__init__.py": ""}
        wheel = wheel_bytes(self.harness.root / "w", "slowpkg", "1.0", files=files)
        wheels = self.harness.root / "wheelhouse"
        wheels.mkdir()
        repo = self.harness.repo(
            {
                "wheels/slowpkg-1.0-py3-none-any.whl": wheel,
                "requirements.txt": "./wheels/slowpkg-1.0-py3-none-any.whl\n",
            }
        )
        self.harness.use(repo, pip_offline=True, pip_find_links=str(wheels))
        return "installing 1 packages"

    def run(self) -> str:
        # sleeps as long as the task says: the rerun after a SIGKILL gets 0 (see after_kill)
        sleeper = job(
            "import time",
            "print('started', flush=True)",
            "time.sleep(float(sdk.read_config().get('test_sleep', 0)))",
            JOB_OUTPUTS,
        )
        self.harness.use(self.harness.job_repo(sleeper), test_sleep=300)
        return "started"

    def outputs(self) -> str:
        self.harness.use(self.harness.job_repo(job(_SLOW_OUTPUT)))
        return "job finished"

    def after_kill(self) -> None:
        if self.server is not None:
            self.server.throttle = None  # let an orphaned git finish quickly
        if "test_sleep" in self.harness.config():
            self.harness.set_config(test_sleep=0)


PHASES = ["fetch", "install", "run", "outputs"]


def _signalled(
    harness: Harness, stack: contextlib.ExitStack, cert: tuple[Path, Path], phase: str, signum: int
) -> tuple[Phase, Outcome]:
    """A run set up for ``phase``, sent ``signum`` once the phase's line shows, and waited for."""
    p = Phase(harness, stack, cert)
    line = getattr(p, phase)()
    live = harness.start()
    live.wait_for(line, timeout=120)
    live.signal(signum)
    return p, live.finish(timeout=60)


@pytest.mark.parametrize("phase", PHASES)
def test_sigterm_at_each_phase_stops_cleanly(harness: Harness, tls_cert: tuple[Path, Path], phase: str) -> None:
    with contextlib.ExitStack() as stack:
        p, out = _signalled(harness, stack, tls_cert, phase, signal.SIGTERM)
        if phase == "outputs" and out.returncode == 0:  # the check was already over: a plain success
            harness.expect_success(out)
            return
        rec = harness.expect_failure(
            out,
            errors.LiveCodeError,
            "stopped by",
            exit_code=128 + signal.SIGTERM,
            code=contract.ReturnCode.CONTAINER_ERROR,
        )
        assert "stopped by SIGTERM" in rec.message and "stopped by signal 15" in out.stderr
        assert harness.provenance()["outcome"]["exit_code"] == 143
        p.after_kill()


def test_ctrl_c_during_the_install_stops_cleanly(harness: Harness, tls_cert: tuple[Path, Path]) -> None:
    """SIGINT (Ctrl-C at a terminal) before the job: "interrupted", exit 130, nothing left behind."""
    with contextlib.ExitStack() as stack:
        _, out = _signalled(harness, stack, tls_cert, "install", signal.SIGINT)
        rec = harness.expect_failure(
            out, errors.LiveCodeError, "interrupted", exit_code=130, code=contract.ReturnCode.CONTAINER_ERROR
        )
        assert rec.message == "interrupted" and harness.provenance()["outcome"]["exit_code"] == 130


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_sigint_that_the_shell_ignores_stays_ignored(harness: Harness, tls_cert: tuple[Path, Path]) -> None:
    """A harness that a shell script starts in the background (``live-code run &``) has SIGINT
    ignored, as every command there has: a Ctrl-C at that terminal is not meant for it. It keeps
    it ignored, and the run goes on to its end."""
    with contextlib.ExitStack() as stack:
        line = Phase(harness, stack, tls_cert).install()
        live = harness.start(preexec=_ignore_sigint)
        live.wait_for(line, timeout=120)
        live.signal(signal.SIGINT)
        harness.expect_success(live.finish(timeout=120))


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_at_each_phase_then_a_clean_rerun(harness: Harness, tls_cert: tuple[Path, Path], phase: str) -> None:
    with contextlib.ExitStack() as stack:
        p, _ = _signalled(harness, stack, tls_cert, phase, signal.SIGKILL)
        p.after_kill()
        assert_no_processes(harness.task_dir, harness.work, harness.cache, within=30)
        check_cache(harness.cache, debris_ok=True, incomplete_ok=True)
        # documented: a SIGKILLed run leaves its working dir (the container's removal cleans it up)
        debris = list(harness.work.glob("live-code-run-*"))
        assert len(debris) == 1
        shutil.rmtree(debris[0])
        if harness.out_dir.exists():
            shutil.rmtree(harness.out_dir)
            harness.out_dir.mkdir()
        out = harness.run(timeout=180)
        harness.expect_success(out)
        if phase == "install":
            assert "removing the incomplete envs entry" in out.stderr


def test_second_sigterm_during_the_grace_period_does_not_orphan_the_job(harness: Harness) -> None:
    """The platform may signal twice (docker stop, then a retry): still one clean stop."""
    harness.use(
        harness.job_repo(
            job(
                "import signal, time",
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)",
                "print('started', flush=True)",
                "time.sleep(300)",
            )
        )
    )
    live = harness.start()
    live.wait_for("started")
    live.signal(signal.SIGTERM)
    live.signal(signal.SIGTERM)
    out = live.finish(timeout=60)
    rec = harness.expect_failure(
        out, errors.LiveCodeError, "stopped by", exit_code=143, code=contract.ReturnCode.CONTAINER_ERROR
    )
    assert "stopped by SIGTERM" in rec.message


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_sigterm_whose_exception_python_ignores_still_stops_the_run() -> None:
    """Regression (seen in this suite: SIGTERM during install, then the run succeeded): a signal
    handled while a subprocess is being forked runs the handler inside an at-fork hook, where
    Python prints "Exception ignored" and drops its Stopped. The handler also records the signal
    and the pipeline checks for it between phases. Here a finaliser plays the at-fork hook."""
    from live_code.run import pipeline

    class Finaliser:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGTERM)

    previous = pipeline._stop_on_signals()
    try:
        Finaliser()  # its Stopped is ignored where it is raised
        with pytest.raises(pipeline.Stopped) as stopped:
            pipeline._check_stopped()
        assert stopped.value.signum == signal.SIGTERM
    finally:
        pipeline._restore_signals(previous)


# logging's at-fork hook must be registered after this script's: it may not be imported before
_IN_A_FORK_HOOK = """
import ctypes, functools, os, signal, sys
assert "logging" not in sys.modules, "logging was imported at start-up: its at-fork hooks come first"
libc = ctypes.CDLL(None)
# the signal (argv[1]) from C, in the parent's after-fork hooks: with no Python frame of its own, the handler
# runs in the frame of the next hook, logging's _releaseLock (they run in registration order)
os.register_at_fork(after_in_parent=functools.partial(libc.kill, os.getpid(), int(sys.argv[1])))
import contextlib, json, logging, subprocess, threading, time
from live_code.run import signals

# argv[2]: "run" (a run before its job: stop_on_signals) or "cli" (any command: ctrl_c_deferred)
run = sys.argv[2] == "run"
previous, started, where = signals.stop_on_signals() if run else {}, time.monotonic(), "nowhere"
proc = None
try:
    with contextlib.nullcontext() if run else signals.ctrl_c_deferred():
        proc = subprocess.Popen(["sleep", "60"], preexec_fn=os.getpid)  # a preexec_fn: the hooks run
        where = "wait"
        proc.wait()
        where = "after the wait"
        signals.check_stopped()
except signals.Stopped as e:
    where += f": Stopped({e.signum})"
except KeyboardInterrupt:
    where += ": KeyboardInterrupt"
finally:
    signals.restore_signals(previous)
seconds = time.monotonic() - started
if proc is not None:
    proc.kill()
probe = threading.Thread(target=logging.getLogger, args=("another thread",), daemon=True)
probe.start()
probe.join(5)
restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
print(json.dumps({"where": where, "seconds": seconds, "lock_held": probe.is_alive(), "restored": restored}))
"""


def _in_a_fork_hook(signum: int, mode: str) -> dict[str, Any]:
    """What the script above saw: where the signal came out, after how long, whether logging's lock
    was left held, and whether SIGINT's handler was given back."""
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IN_A_FORK_HOOK), str(int(signum)), mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert res.returncode == 0, res.stderr
    assert "Exception ignored" not in res.stderr, res.stderr
    return dict(json.loads(res.stdout))


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGTERM, "Stopped(15)"), (signal.SIGHUP, "Stopped(1)"), (signal.SIGINT, "KeyboardInterrupt")],
)
def test_signal_in_a_fork_hook_stops_the_wait_and_leaves_logging_usable(signum: int, raised: str) -> None:
    """Regression (CI, stop 28: SIGTERM during the install, then the harness hung): the handler ran
    as logging's at-fork ``_releaseLock`` started, so its Stopped was dropped and logging's lock
    stayed held; the env's bytecode compile, started from a thread, then waited forever for it, and
    the stopping harness for that thread. Now the handler defers in such frames and sends the
    signal again: the Stopped comes out of the wait for the child at once. Ctrl-C (SIGINT) did the
    same with Python's own handler, and now gets the same treatment."""
    got = _in_a_fork_hook(signum, "run")
    assert got["where"] == f"wait: {raised}", got
    assert got["seconds"] < 10 and got["lock_held"] is False and got["restored"] is True, got  # it sleeps 60 s


def test_ctrl_c_in_a_fork_hook_is_not_lost_by_any_command() -> None:
    """Every command runs under ``signals.ctrl_c_deferred`` (``cli.main``), not only a run before
    its job: with Python's own handler, a Ctrl-C that came as a subprocess was being forked was
    dropped in logging's at-fork hook and left its lock held, so a command went on as if none came,
    or hung once another thread logged. Here the Ctrl-C comes out of the wait for the child at once,
    logging stays usable, and the handler is given back after."""
    got = _in_a_fork_hook(signal.SIGINT, "cli")
    assert got["where"] == "wait: KeyboardInterrupt", got
    assert got["seconds"] < 10 and got["lock_held"] is False and got["restored"] is True, got


def test_every_command_runs_with_the_deferring_handler_and_gives_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from live_code import cli
    from live_code.run import signals as run_signals

    during: list[object] = []
    real_main = cli._main

    def spy(argv: list[str]) -> int:
        during.append(signal.getsignal(signal.SIGINT))
        return real_main(argv)

    monkeypatch.setattr(cli, "_main", spy)
    monkeypatch.setenv("LIVE_CODE_CACHE", str(tmp_path / "cache"))
    before = signal.getsignal(signal.SIGINT)
    assert cli.main(["cache", "ls", "--json"]) == 0
    assert during == [run_signals._interrupt] and signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # started in the background by a shell
    try:
        assert cli.main(["cache", "ls", "--json"]) == 0
        assert during[-1] is signal.SIG_IGN and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
