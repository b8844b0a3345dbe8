"""The supervisor against small misbehaving child processes (real processes and signals)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from live_code.run import supervisor
from live_code.run.supervisor import RunRequest


class CountingSink(io.RawIOBase):
    """A sink that keeps the first MiB and counts the rest, so 100 MB does not sit in memory."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.count += len(b)
        if len(self.head) < 1 << 20:
            self.head += bytes(b[: (1 << 20) - len(self.head)])
        return len(b)


def _child(tmp_path: Path, code: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    return [sys.executable, str(script)]


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **extra}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_exit_code_and_tail_are_reported(tmp_path: Path) -> None:
    sink = CountingSink()
    argv = _child(tmp_path, "import sys\nprint('working'); print('boom', file=sys.stderr); sys.exit(3)")
    out = supervisor.run(RunRequest(argv, tmp_path, _env(), sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    assert out.returncode == 3 and not out.ok and not out.timed_out
    assert out.tail == ("working", "boom")
    assert "exited with code 3" in out.describe()


def test_child_gets_exactly_the_given_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_CODE_GIT_TOKEN", "canary-token-1234")
    sink = CountingSink()
    argv = _child(tmp_path, "import os, json\nprint(json.dumps(sorted(os.environ)))")
    out = supervisor.run(RunRequest(argv, tmp_path, _env(ONLY="1"), sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    assert out.ok
    names = set(json.loads(bytes(sink.head).decode().strip()))
    assert "LIVE_CODE_GIT_TOKEN" not in names and "ONLY" in names


def test_secrets_and_url_credentials_are_redacted(tmp_path: Path) -> None:
    sink = CountingSink()
    code = "print('token canary-token-1234 and https://user:pw-5678@host/r.git'); print('partial', end='')"
    out = supervisor.run(RunRequest(_child(tmp_path, code), tmp_path, _env(), secrets=["canary-token-1234"], sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    text = bytes(sink.head).decode()
    assert out.ok
    assert "canary-token-1234" not in text and "pw-5678" not in text
    assert "token *** and https://***@host/r.git" in text
    assert text.endswith("partial")  # a last line without newline is not lost


def test_timeout_escalates_to_sigkill_for_a_child_ignoring_sigterm(tmp_path: Path) -> None:
    code = """
    import signal, time
    signal.signal(signal.SIGTERM, lambda *a: print('ignoring SIGTERM', flush=True))
    print('up', flush=True)
    time.sleep(60)
    """
    sink = CountingSink()
    t0 = time.monotonic()
    out = supervisor.run(RunRequest(_child(tmp_path, code), tmp_path, _env(), timeout=1.0, grace=1.0, sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    assert out.timed_out and out.signal == signal.SIGKILL and not out.ok
    assert "ignoring SIGTERM" in out.tail
    assert time.monotonic() - t0 < 1.0 + 1.0 + 3.0
    assert "timed out" in out.describe()


def test_returns_and_kills_a_setsid_grandchild_holding_stdout(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = f"""
    import os, subprocess, sys
    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)
    open({str(pidfile)!r}, 'w').write(str(p.pid))
    print('parent exits', flush=True)
    """
    sink = CountingSink()
    t0 = time.monotonic()
    out = supervisor.run(RunRequest(_child(tmp_path, code), tmp_path, _env(), sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    assert out.returncode == 0
    assert time.monotonic() - t0 < 10
    grandchild = int(pidfile.read_text())
    assert not _alive(grandchild), "the setsid grandchild was left running"
    assert out.stragglers >= 1


def test_chatty_child_printing_100mb_does_not_block(tmp_path: Path) -> None:
    code = """
    import sys
    line = b'x' * 1023 + b'\\n'
    block = line * 1024
    for _ in range(100):
        sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()
    """
    sink = CountingSink()
    out = supervisor.run(RunRequest(_child(tmp_path, code), tmp_path, _env(), sink=sink))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
    assert out.ok
    assert sink.count == 100 * 1024 * 1024


def test_sigterm_to_the_harness_is_forwarded_then_escalated(tmp_path: Path) -> None:
    """A driver process runs the supervisor in its main thread; SIGTERM goes to the driver."""
    got = tmp_path / "child-got-sigterm"
    child = _child(
        tmp_path,
        f"""
    import signal, time
    def on_term(*a):
        open({str(got)!r}, 'w').write('yes')
    signal.signal(signal.SIGTERM, on_term)
    print('up', flush=True)
    time.sleep(60)
    """,
    )
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
    import json, os, sys
    from pathlib import Path
    from live_code.run import supervisor
    out = supervisor.run(supervisor.RunRequest({child!r}, Path({str(tmp_path)!r}),
        {{'PATH': os.environ['PATH'], 'PYTHONUNBUFFERED': '1'}}, grace=1.0))
    print(json.dumps({{'interrupted': out.interrupted, 'signal': out.signal}}), flush=True)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGTERM)
    result = json.loads(proc.stdout.readline())
    proc.wait(timeout=10)
    assert result == {"interrupted": signal.SIGTERM, "signal": signal.SIGKILL}
    assert got.read_text() == "yes"


def test_unstartable_command_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        supervisor.run(RunRequest([str(tmp_path / "missing")], tmp_path, _env()))


def test_empty_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RunRequest([], tmp_path, _env())


def _all_last_lines(text: str, count: int) -> list[str]:
    """The plain way: split everything, keep the non-blank lines, take the last ``count``."""
    return [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()][-count:]


def test_tail_read_from_the_end_equals_splitting_everything() -> None:
    import random

    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\n", "\r", "\n\n", "é", "x" * 3000]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        for count in (1, 20):
            assert supervisor._last_lines(text, count) == _all_last_lines(text, count), repr(text[:200])
    long_tail = "x" * 10_000 + "\nlast"  # the cut at 4096 must not keep half of the long line
    assert supervisor._last_lines(long_tail, 2) == ["x" * 10_000, "last"]
