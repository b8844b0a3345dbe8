"""The supervisor against small misbehaving child processes (real processes and signals)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from live_code.run import _reaper, supervisor
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


@pytest.mark.needs_bwrap
def test_a_sandboxed_job_that_leaves_nothing_is_not_said_to_leave_a_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When bubblewrap's outer process (the job's child) exits, the kernel kills its first process
    in the sandbox, which is re-parented to the harness for a moment first. Half of the runs found
    it there, still exiting, and warned that the job had left a process running."""
    from live_code.run import sandbox

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    mounts = sandbox.Mounts(tmp_path / "in", tmp_path / "out")
    for _ in range(20):
        argv = sandbox.wrap([sys.executable, "-c", "print('done')"], mounts, cwd=tmp_path)
        out = supervisor.run(RunRequest(argv, tmp_path, _env(), sink=CountingSink()))  # type: ignore[arg-type]  # a counting sink: write and flush are all the supervisor calls
        assert out.returncode == 0 and out.stragglers == 0
    assert "left running" not in caplog.text


def test_a_zombie_child_is_not_living_and_a_sleeping_one_is(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while _alive(zombie.pid) and time.monotonic() < deadline:  # exited, not yet reaped
            time.sleep(0.01)
        kids = _reaper.children_of(os.getpid())
        assert _reaper._living(sleeper.pid, *kids[sleeper.pid]) is True
        assert _reaper._living(zombie.pid, *kids[zombie.pid]) is False
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


def test_children_are_found_from_the_threads_lists_as_from_a_scan_of_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``children_of`` reads the children each thread of the process lists; it finds a child forked
    by another thread and an orphan taken in as a subreaper, as reading every process does."""
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    started: list[subprocess.Popen[bytes]] = []
    done = threading.Event()

    def fork_and_wait() -> None:  # the thread lives on while its child is looked for
        started.append(subprocess.Popen(sleep))
        done.wait(30)

    thread = threading.Thread(target=fork_and_wait)
    thread.start()
    assert _reaper.become_subreaper()  # as the supervisor makes the harness
    spawn = "import subprocess, sys; print(subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL).pid)"
    orphan_parent = subprocess.Popen([sys.executable, "-c", spawn, *sleep], stdout=subprocess.PIPE)
    orphan = int(orphan_parent.communicate()[0])  # its parent has exited: it was re-parented to us
    try:
        while not started:
            time.sleep(0.01)
        listed = _reaper.children_of(os.getpid())
        assert {started[0].pid, orphan} <= set(listed)
        monkeypatch.setattr(_reaper, "_listed_children", lambda pid: None)
        assert _reaper.children_of(os.getpid()) == listed
    finally:
        done.set()
        thread.join()
        for pid in (started[0].pid, orphan):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


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


def _pumped(chunks: list[bytes], secrets: tuple[str, ...] = ()) -> tuple[bytes, list[str]]:
    """Feed ``chunks`` to a pump as reads from the pipe, then end it; returns what it wrote."""
    from live_code.run import _pump

    sink = CountingSink()
    pump = _pump.Pump(-1, sink, secrets)
    for chunk in chunks:
        pump.feed(chunk)
    pump._emit(pump._pending)
    return bytes(sink.head), list(pump.tail)


@pytest.mark.parametrize("line_end", [b"\n", b""])
def test_a_secret_or_url_credentials_split_across_two_reads_are_redacted(line_end: bytes) -> None:
    """Every cut point of a line holding a secret and URL credentials, with and without a line end
    before the next read; the long filler makes the pump cut inside the line (no line end at all)."""
    secret = "canary-token-1234"
    filler = b"y" * 70_000 if not line_end else b"log "
    line = filler + b" token canary-token-1234 and https://user:pw-5678@host/r " + filler + line_end
    for cut in range(len(filler) - 5, len(line) - len(filler) + 5):
        out, _ = _pumped([line[:cut], line[cut:], b"next\n"], (secret,))
        assert b"canary" not in out and b"pw-5678" not in out and b"user:" not in out, cut
        assert out == line.replace(b"canary-token-1234", b"***").replace(b"user:pw-5678", b"***") + b"next\n"


def test_pump_writes_bytes_as_they_came_and_replaces_invalid_utf8() -> None:
    out, tail = _pumped([b"caf\xc3\xa9\r50%\rdone\n", b"bad \xff byte\n", b"no end"])
    assert out == "café\r50%\rdone\nbad \ufffd byte\nno end".encode()
    assert tail == ["café", "50%", "done", "bad \ufffd byte", "no end"]


@pytest.mark.parametrize(
    ("data", "cut"),
    [(b"a\nb\rc", 4), (b"a\rbb\nc", 5), (b"50%\r", 4), (b"x\n", 2), (b"\r\n", 2), (b"abc", 0), (b"", 0)],
)
def test_a_block_is_cut_after_its_last_newline_or_carriage_return(data: bytes, cut: int) -> None:
    from live_code.run import _pump

    assert _pump._after_last_line_end(data) == cut


def test_pump_cost_no_copy_for_plain_ascii_output() -> None:
    """No credential in sight: the block written is the block read (nothing decoded or copied)."""
    from live_code import util

    block = b"x" * 1000 + b"\n"
    assert util.BytesRedactor(["a-secret"]).redact(block) is block


def test_bytes_redaction_matches_text_redaction() -> None:
    from live_code import util

    secrets = ["canary-token-1234", "canary-token", "abc"]  # the short one is ignored, as in util.redact
    samples = [
        "x https://u:p@h/r y canary-token-1234 canary-token abc",
        "git+ssh://git@github.com/o/r and http://tok@127.0.0.1:8080/x",
        "no credentials: https://host/path and mail a@b",
    ]
    for text in samples:
        assert util.BytesRedactor(secrets).redact(text.encode()) == util.redact(text, secrets).encode()


def test_only_a_job_outside_the_sandbox_gets_a_guard(tmp_path: Path) -> None:
    from live_code.run import sandbox

    wrapped = sandbox.wrap(["python", "x.py"], sandbox.Mounts(tmp_path, tmp_path), cwd=tmp_path)
    assert sandbox.dies_with_parent(wrapped)
    assert not sandbox.dies_with_parent(["python", "x.py", "--die-with-parent", "--unshare-pid"])
    assert supervisor._start_guard(wrapped, 1) == (None, None)


def test_a_pipe_sink_gets_the_same_output_as_a_python_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sink with a descriptor gets clean lines moved in the kernel (``_splice``); the output,
    redaction and tail must be those of the pump that copies everything through Python."""
    import threading

    from live_code.run import _splice

    moved: list[int] = []
    move = _splice.Splicer.move
    monkeypatch.setattr(_splice.Splicer, "move", lambda self, fd, n: (moved.append(n), move(self, fd, n))[1])

    code = r"""
    import sys, time
    w = sys.stdout.buffer.write
    for i in range(30):
        w(b'plain line %d\n' % i * 2000)
        w(b'token canary-token-1234 and https://u:pw-5678@host/r\n' if i % 7 == 3 else b'')
        w(('caf\u00e9 %d\n' % i).encode() if i % 5 == 2 else b'')
        w(b'a line without end ' * (i % 3))
        w(b'50%\r' if i % 4 == 1 else b'')
        sys.stdout.flush()
        time.sleep(0.01)
    w(b'x' * 200_000 + b' canary-token-1234 ' + b'y' * 100)
    """
    argv = _child(tmp_path, code)
    copied = CountingSink()
    by_copy = supervisor.run(RunRequest(argv, tmp_path, _env(), secrets=["canary-token-1234"], sink=copied))
    read_fd, write_fd = os.pipe()
    got = bytearray()

    def read_all() -> None:
        for block in iter(lambda: os.read(read_fd, 1 << 16), b""):
            got.extend(block)

    reader = threading.Thread(target=read_all)
    reader.start()
    with open(write_fd, "wb") as sink:
        by_splice = supervisor.run(RunRequest(argv, tmp_path, _env(), secrets=["canary-token-1234"], sink=sink))
    reader.join()
    os.close(read_fd)
    assert by_copy.ok and by_splice.ok
    assert copied.count < 1 << 20 and bytes(got) == bytes(copied.head)
    assert b"canary" not in got and b"pw-5678" not in got and "café 27".encode() in got
    assert by_splice.tail == by_copy.tail
    assert sum(moved) > 100_000, "the clean lines were not spliced"
