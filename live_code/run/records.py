"""The harness's own records in the out dir: ``monitor.txt`` and the provenance record, written
whatever the job left at their paths, and the return code a failing job put in ``monitor.txt``."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from live_code import _yaml, contract, util
from live_code.contract import MonitorState
from live_code.envs.lock import LOCK_NAME
from live_code.errors import CacheError, LiveCodeError, OutputError

log = logging.getLogger(__name__)

#: the merged hyper-parameters the job reads (``/out/live-code-config.yaml``)
CONFIG_NAME = "live-code-config.yaml"
#: the run's provenance record, next to the outputs (and in ``/out/models`` for training)
PROVENANCE_NAME = "live-code-provenance.yaml"

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_config(out_dir: Path, text: str) -> Path:
    """The merged config the job reads, ``CONFIG_NAME`` in the out dir."""
    path = out_dir / CONFIG_NAME
    try:
        util.atomic_write(path, text)
    except OSError as e:
        raise OutputError(
            f"cannot write {path}: {e.strerror}",
            value=str(path),
            hint="the out dir must be writable and have free space",
        ) from None
    return path


def write_monitor(out_dir: Path, record: contract.MonitorRecord) -> None:
    """``monitor.txt``; a failure to write it is logged, never raised (the run goes on)."""
    try:
        write_over(out_dir / "monitor.txt", contract.format_monitor(record))
    except OSError as e:
        log.warning("cannot write monitor.txt: %s", e)


def write_provenance(
    record: dict[str, Any],
    targets: Iterable[Path],
    secrets: Iterable[str],
    *,
    gpus: GpuQuery,
    lock_text: str | None = None,
) -> None:
    """The record (the GPUs that ``gpus`` found added), redacted, at each of ``targets``, with the
    env's lock (``lock_text``) beside each: it travels with the provenance and the model (issue 22);
    a failure to write one is logged."""
    gpu = gpus.result()
    if gpu:
        record["gpu"] = gpu
    secrets = list(secrets)
    text = util.redact(_yaml.dump(record, sort_keys=False), secrets)
    for path in targets:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_over(path, text)
            if lock_text is not None:
                write_over(path.parent / LOCK_NAME, util.redact(lock_text, secrets))
        except OSError as e:
            log.warning("cannot write %s: %s", path, e)


#: the longest reason of the job's own that the harness's monitor.txt repeats (one line)
_REASON_CHARS = 500


def job_error(out_dir: Path) -> tuple[int, str] | None:
    """The return code a failing job put in monitor.txt (state 4), which YMIR >= 2.3 reports, and
    the first line of its reason (``""`` when it gave none); None when it wrote no error."""
    with contextlib.suppress(OSError, ValueError):
        if not stat.S_ISREG(os.lstat(out_dir / "monitor.txt").st_mode):
            return None  # a FIFO would block the read forever; a link may point anywhere
        record = contract.parse_monitor((out_dir / "monitor.txt").read_text())
        if record.state == MonitorState.ERROR and record.return_code:
            reason = record.message.strip().partition("\n")[0].strip()
            return record.return_code, reason[:_REASON_CHARS]
    return None


def write_over(path: Path, text: str) -> None:
    """A harness record (monitor, provenance) written whatever the job left at ``path``: a
    directory there is removed; with no room for a temp file, the old record (a regular file, its
    blocks already allocated) is overwritten in place."""
    if path.is_dir() and not path.is_symlink():
        util.rmtree(path)
    try:
        util.atomic_write(path, text)
    except OSError as e:
        if e.errno not in NO_SPACE:
            raise
        try:
            st = os.lstat(path)
        except OSError:
            raise e from None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # a link the job made may lead to a file not ours
            raise
        data = text.encode()
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate(len(data))
            f.flush()
            os.fsync(f.fileno())


class GpuQuery:
    """The machine's GPUs as ``nvidia-smi`` lists them (name, driver, memory), asked when this is
    made and read by :meth:`result`. A run makes it at its start, so the query runs beside the run,
    not after the job: without persistence mode the driver sets the GPUs up again for each client
    once none holds them (NVIDIA's "Driver Persistence" notes), which is the moment after a job, and
    nvidia-smi then takes up to seconds (not measured here: these machines have no GPU). None where
    there is no nvidia-smi or it fails."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._result: list[str] | None = None
        exe = shutil.which("nvidia-smi")
        if exe is not None:
            with contextlib.suppress(OSError):
                self._proc = subprocess.Popen(
                    [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # its own group, killed whole at the deadline
                )

    def result(self, timeout: float = 10.0) -> list[str] | None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                out = proc.communicate(timeout=timeout)[0]
            except subprocess.TimeoutExpired:
                util.kill_group(proc)
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
                return None
            if proc.returncode == 0:
                self._result = [ln.strip() for ln in out.decode(errors="replace").splitlines() if ln.strip()]
        return self._result


def disk_full(e: BaseException, out_dir: Path, cache_root: Path) -> LiveCodeError | None:
    """A full disk (or file size limit) met by the harness itself, as a classified error naming
    where, or None for any other exception."""
    if not isinstance(e, OSError) or e.errno not in NO_SPACE:
        return None
    where = os.fspath(e.filename) if e.filename else ""
    msg = f"no space left on the device writing {where or 'a file'}: {e.strerror}"
    hint = "free disk space (the out dir, the work dir and the cache) and run again"
    if where.startswith(str(out_dir)):
        return OutputError(msg, value=where, hint=hint)
    if where.startswith(str(cache_root)):
        return CacheError(msg, value=where, hint=hint)
    return LiveCodeError(msg, value=where or None, hint=hint)


def attach_lock(models_dir: Path, lock_text: str, *, stage_dirs: bool) -> bool:
    """Make the env's lock a file of every model stage: named in each stage's ``files`` of
    result.yaml (``model`` in the 1.x layout) and written where the packer looks, in each stage's
    directory (``stage_dirs``: protocol >= 1.1.0) or flat in ``models_dir``. YMIR packs only the
    stages' files and delivers the chosen stage to mining and infer (ymir-contract 6.2), where
    ``live_code_lock: model`` finds it (issue 22). False, with nothing changed, when result.yaml
    names no list of files (the gate has refused it by then)."""
    result = models_dir / "result.yaml"
    data = yaml.safe_load(result.read_text())
    if not isinstance(data, dict):
        return False
    stages = data.get("model_stages")
    if isinstance(stages, dict):
        named = {
            str(k): s["files"] for k, s in stages.items() if isinstance(s, dict) and isinstance(s.get("files"), list)
        }
    else:
        named = {"": data["model"]} if isinstance(data.get("model"), list) else {}
    if not named:
        return False
    # the files first: result.yaml never names one that is not there
    for stage in named if stage_dirs else ("",):
        if stage in (".", "..") or "/" in stage:
            return False  # the gate refuses such a stage name; never write outside models_dir
        (models_dir / stage).mkdir(exist_ok=True)
        write_over(models_dir / stage / LOCK_NAME, lock_text)
    for files in named.values():
        if LOCK_NAME not in files:
            files.append(LOCK_NAME)
    util.atomic_write(result, _yaml.dump(data, sort_keys=False))
    return True
