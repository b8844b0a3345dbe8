"""live_code.util: secret redaction, the one path for short subprocesses (deadline kills the whole
process group), atomic writes and tree removal; with real processes and files."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from live_code import util

SECRET = "tok3n-abcdef"


# -- redaction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pa55@example.com/o/r.git", "https://***@example.com/o/r.git"),
        ("git+https://x-access-token:abc@github.com/o/r", "git+https://***@github.com/o/r"),
        ("fetch https://tok@h/r and http://u:p@h2/", "fetch https://***@h/r and http://***@h2/"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # no scheme: not a URL's userinfo
        ("mail me at someone@example.com", "mail me at someone@example.com"),
    ],
)
def test_redact_hides_url_credentials(text: str, expected: str) -> None:
    assert util.redact(text) == expected


def test_redact_replaces_secrets_longest_first_and_ignores_tiny_ones() -> None:
    text = f"a {SECRET} b {SECRET}-extra c abc"
    assert util.redact(text, [SECRET, f"{SECRET}-extra", "abc", ""]) == f"a {util.REDACTED} b {util.REDACTED} c abc"


def test_called_process_error_shows_the_redacted_command_status_and_last_lines() -> None:
    stdout = "".join(f"line {i}\n" for i in range(100))
    err = util.CalledProcessError(
        ["git", "fetch", f"https://{SECRET}@h/r"], 128, stdout, f"denied {SECRET}\n", secrets=[SECRET]
    )
    text = str(err)
    assert text.startswith("command failed (exit code 128): git fetch https://***@h/r")
    assert SECRET not in text and "denied ***" in text
    assert "line 99" in text and "line 60" in text and "line 59" not in text  # the last 40 lines
    assert str(util.CalledProcessError(["x"], None, "", "", timed_out=True)) == "command failed (timed out): x"


# -- short subprocesses ------------------------------------------------------------------------------


def test_cmd_output_returns_code_and_both_streams() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    assert util.cmd_output(sys.executable, "-c", code, check=False) == (3, "out\n", "err\n")
    with pytest.raises(util.CalledProcessError) as err:
        util.cmd_output(sys.executable, "-c", code)
    assert err.value.returncode == 3 and err.value.stderr == "err\n"


def test_cmd_output_closes_stdin_unless_given_bytes(tmp_path: Path) -> None:
    read = "import sys; print(repr(sys.stdin.read()))"
    assert util.cmd_output(sys.executable, "-c", read, timeout=30)[1] == "''\n"
    assert util.cmd_output(sys.executable, "-c", read, stdin=b"hello", timeout=30)[1] == "'hello'\n"
    assert util.cmd_output("pwd", cwd=tmp_path)[1].strip() == str(tmp_path)
    assert util.cmd_output("sh", "-c", "echo $ONLY", env={"ONLY": "this"})[1] == "this\n"


def test_a_command_that_cannot_start_is_a_called_process_error(tmp_path: Path) -> None:
    with pytest.raises(util.CalledProcessError, match="could not start") as err:
        util.cmd_output(str(tmp_path / "no-such-tool"))
    assert err.value.returncode is None


def test_the_deadline_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pid_file}; echo started; wait"
    start = time.monotonic()
    with pytest.raises(util.CalledProcessError) as err:
        util.cmd_output("sh", "-c", script, timeout=2)
    assert err.value.timed_out and "timed out" in str(err.value)
    assert time.monotonic() - start < 30
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the sleep the shell started outlived the deadline"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie waiting for its reaper is gone for our purpose


# -- files ----------------------------------------------------------------------------------------------


def test_atomic_write_replaces_the_whole_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.yaml"
    target.write_text("old\n")
    util.atomic_write(target, "new\n", mode=0o600)
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    util.atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.yaml"]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.yaml"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        util.atomic_write(target, 42)  # type: ignore[arg-type]  # a wrong type on purpose, to fail mid-write
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.yaml"]


def test_clean_path_on_failure_removes_the_path_only_when_the_block_raises(tmp_path: Path) -> None:
    kept, removed = tmp_path / "kept", tmp_path / "removed"
    for path in (kept, removed):
        (path / "sub").mkdir(parents=True)
    with util.clean_path_on_failure(kept):
        (kept / "sub" / "f").write_text("x")
    with pytest.raises(KeyboardInterrupt), util.clean_path_on_failure(removed):
        raise KeyboardInterrupt
    assert (kept / "sub" / "f").is_file() and not removed.exists()


def test_rmtree_removes_read_only_trees_and_ignores_a_missing_path(tmp_path: Path) -> None:
    tree = tmp_path / "objects" / "ab"
    tree.mkdir(parents=True)
    (tree / "cdef").write_text("blob")
    (tree / "cdef").chmod(0o444)
    tree.chmod(0o555)
    util.rmtree(tmp_path / "objects")
    util.rmtree(tmp_path / "never-there")
    assert list(tmp_path.iterdir()) == []
