"""Small shared pieces: the one path for short subprocesses, secret redaction, atomic writes, small
keyed caches, the platform's name."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

REDACTED = "***"

# scheme://user[:password]@host -> scheme://***@host. The userinfo may hold anything but '/', '@'
# and whitespace; the last '@' before the host ends it (tokens may contain '@' percent-encoded only).
_URL_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL credentials and every known secret string replaced by ``***``."""
    text = _URL_USERINFO_RE.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    # longest first, so a secret that contains another is replaced whole
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class BytesRedactor:
    """:func:`redact` for raw output, in one pass of one compiled pattern: URL credentials first,
    then the secrets, longest first. ``redact(data)`` returns ``data`` itself (no copy) when it holds
    neither a URL with ``@`` nor a secret, which is the common case for a job's output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(sorted({s.encode() for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
        url = _URL_USERINFO_RE.pattern.encode()
        self._pattern = re.compile(b"|".join([url, *(re.escape(s) for s in self.secrets)]))
        #: how many bytes of a secret can sit at the end of a block whose rest comes in the next one
        self.overlap = max((len(s) - 1 for s in self.secrets), default=0)

    def needed(self, data: bytes) -> bool:
        """Whether ``data`` may hold something to redact. URL credentials need an '@': a one-byte
        search is a memchr, while looking for '://' in plain output costs more than all the rest
        of the pump's work (bench/README.md, "harness CPU")."""
        return (b"@" in data and b"://" in data) or any(s in data for s in self.secrets)

    def redact(self, data: bytes) -> bytes:
        if not self.needed(data):
            return data
        return self._pattern.sub(self._replace, data)

    def matches(self, data: bytes, start: int = 0) -> Iterator[re.Match[bytes]]:
        """What :meth:`redact` would replace in ``data[start:]``."""
        return self._pattern.finditer(data, start)

    @staticmethod
    def _replace(m: re.Match[bytes]) -> bytes:
        scheme = m["scheme"]
        return REDACTED.encode() if scheme is None else scheme + REDACTED.encode() + b"@"


class CalledProcessError(RuntimeError):
    """A short subprocess failed. Its text shows the (redacted) command, exit code and output."""

    def __init__(
        self,
        cmd: Sequence[str],
        returncode: int | None,
        stdout: str,
        stderr: str,
        *,
        timed_out: bool = False,
        secrets: Iterable[str] = (),
    ) -> None:
        self.cmd = [redact(c, secrets) for c in cmd]
        self.returncode = returncode
        self.stdout = redact(stdout, secrets)
        self.stderr = redact(stderr, secrets)
        self.timed_out = timed_out
        super().__init__(self._text())

    def _text(self) -> str:
        status = "timed out" if self.timed_out else f"exit code {self.returncode}"
        parts = [f"command failed ({status}): {' '.join(self.cmd)}"]
        for name, out in (("stdout", self.stdout), ("stderr", self.stderr)):
            if out.strip():
                body = "\n".join("    " + line for line in out.rstrip().splitlines()[-40:])
                parts.append(f"  {name}:\n{body}")
        return "\n".join(parts)


def cmd_output(
    *cmd: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    secrets: Iterable[str] = (),
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[int, str, str]:
    """Run a short command to completion: ``(returncode, stdout, stderr)``.

    The child runs in its own session so that at the deadline the whole process group (git spawns
    helpers such as ``git-remote-http`` and ``index-pack``) is killed, not just the first process.
    stdin is closed unless ``stdin`` bytes are given, so nothing can wait for a prompt.
    ``pass_fds`` are inherited by the child (e.g. a lock's descriptor, so the lock outlives us).
    """
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as e:
        raise CalledProcessError(cmd, None, "", f"could not start {cmd[0]!r}: {e.strerror}", secrets=secrets) from None
    try:
        out_b, err_b = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out_b, err_b = _drain_after_kill(proc)
        raise CalledProcessError(
            cmd,
            proc.returncode,
            out_b.decode(errors="replace"),
            err_b.decode(errors="replace"),
            timed_out=True,
            secrets=secrets,
        ) from None
    except BaseException:  # Ctrl-C or a forwarded signal: leave no child behind
        kill_group(proc)
        _drain_after_kill(proc)
        raise
    out, err = out_b.decode(errors="replace"), err_b.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CalledProcessError(cmd, proc.returncode, out, err, secrets=secrets)
    return proc.returncode, out, err


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group led by ``proc`` (started with ``start_new_session=True``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _drain_after_kill(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    # A process that left the group (setsid) may still hold the pipes open: bound the wait.
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
        return b"", b""


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one, never a part.

    temp file in the same directory, fsync, ``os.replace``, fsync of the directory. The SDK has
    the same steps (``sdk._io.replace_file``), but the harness keeps its own: importing
    any module of ``live_code.sdk`` runs the SDK package's ``__init__``, which costs 8 ms with
    bytecode and 86 ms without, and ``live-code run`` writes monitor.txt before the job's first
    line (issue 24's warm-start budget is 150 ms).
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to open or fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def clean_path_on_failure(path: str | os.PathLike[str]) -> Iterator[None]:
    """Remove ``path`` if the block raises anything, Ctrl-C included."""
    try:
        yield
    except BaseException:
        rmtree(path)
        raise


_NAME_SEPARATORS = re.compile(r"[-_.]+")
# PEP 508's distribution name, and a version of digits and dots with at most one of PEP 440's
# canonical pre-, post- and dev-release suffixes: the ``name==version`` lines most repositories pin
_SIMPLE_PIN = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*"
    r"((?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*(?:(?:a|b|rc)(?:0|[1-9][0-9]*))?(?:\.post(?:0|[1-9][0-9]*))?"
    r"(?:\.dev(?:0|[1-9][0-9]*))?)"
)


def canonical_name(name: str) -> str:
    """A distribution name normalised as PEP 503 says (``re.sub(r"[-_.]+", "-", name).lower()``),
    which is what ``packaging.utils.canonicalize_name`` returns, without importing packaging (about
    12% of the instructions of importing the run path, most of it compiling its regular expressions)."""
    return _NAME_SEPARATORS.sub("-", name).lower()


def simple_pin(body: str) -> tuple[str, str] | None:
    """``(canonical name, "==version")`` of a requirement that is only ``name==version`` with a
    plain release version, as packaging's ``Requirement`` reads it (the specifier as
    ``str(req.specifier)`` gives it); None for anything else (extras, markers, URLs, other
    operators, local or wildcard versions), which packaging parses."""
    m = _SIMPLE_PIN.fullmatch(body.strip())
    return (canonical_name(m.group(1)), "==" + m.group(2)) if m else None


def rmtree(path: str | os.PathLike[str]) -> None:
    """Remove a tree, also one holding read-only files (git objects are 0444)."""

    def _onerror(func, p, exc_info):
        with contextlib.suppress(OSError):
            os.chmod(p, 0o700)
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=_onerror)


def monotonic() -> float:
    return time.monotonic()


def file_stamp(path: str | os.PathLike[str]) -> list[str | int] | None:
    """What changes when a file is replaced: its resolved path, size, mtime (ns) and inode; None
    when it cannot be read. A JSON value, to be part of a :func:`cached_answer` key."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return [real, st.st_size, st.st_mtime_ns, st.st_ino]


def cached_answer(file: Path, key: object) -> object | None:
    """The value :func:`keep_answer` kept in ``file`` for ``key`` (JSON values both), or None when
    there is none: no file, a corrupt one, or one kept for another key."""
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    return doc.get("value")


def keep_answer(file: Path, key: object, value: object) -> None:
    """Keep ``value`` for ``key`` in ``file``, atomically; a cache, so a folder that cannot be
    written (a read-only cache) only means the answer is worked out again next time."""
    with contextlib.suppress(OSError):
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, json.dumps({"key": key, "value": value}))


#: machines whose ``uname -p`` on Linux is the machine or "unknown" (GNU coreutils prints
#: "unknown", Fedora's and Ubuntu's patches the machine): platform.platform() leaves both out
_PLAIN_MACHINES = frozenset({"x86_64", "aarch64"})


def platform_name() -> str:
    """``platform.platform()``'s string, without the ``uname -p`` process it starts on Linux (its
    ``processor`` part, which it drops when it is the machine or "unknown"): on glibc Linux the
    string is ``system-release-machine-with-glibcVERSION`` with what would spoil a file name
    replaced. Anywhere else, or where that is not certain, it is ``platform.platform()`` itself."""
    u = os.uname()
    try:
        libc = (os.confstr("CS_GNU_LIBC_VERSION") or "").split(maxsplit=1)
    except (AttributeError, ValueError, OSError):
        libc = []
    if u.sysname != "Linux" or u.machine not in _PLAIN_MACHINES or len(libc) != 2:
        import platform  # the slow path only

        return platform.platform()
    parts = (p.strip() for p in (u.sysname, u.release, u.machine, "with", libc[0] + libc[1]))
    text = re.sub(r"[/\\:;\"()]", "-", "-".join(p for p in parts if p).replace(" ", "_")).replace("unknown", "")
    return re.sub(r"-{2,}", "-", text).rstrip("-")
