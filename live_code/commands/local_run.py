"""The pipeline run on a task dir of this machine, as ``local`` and ``replay`` do it: the job's
output kept in a log and echoed to stderr, the sandbox announced, an error explained for a YMIR
task, and the provenance annotated."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import yaml

from live_code import contract, util
from live_code.errors import JobError, LiveCodeError, SourceError
from live_code.record import replace
from live_code.run import job, pipeline

log = logging.getLogger(__name__)


class _Tee(io.RawIOBase):
    """The job's output into its log file and, echoed, to live-code's stderr (never stdout: that
    holds the command's results)."""

    def __init__(self, log_file: BinaryIO, echo: BinaryIO | None) -> None:
        self.log_file, self.echo = log_file, echo

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.log_file.write(data)
        if self.echo is not None:
            try:
                self.echo.write(data)
            except (OSError, ValueError):
                self.echo = None
        return len(data)

    def flush(self) -> None:
        self.log_file.flush()
        if self.echo is not None:
            self.echo.flush()


def job_runner(log_path: Path) -> pipeline.Runner:
    """The supervisor, with the job's output written to ``log_path`` and echoed to stderr."""
    from live_code.run import supervisor

    def run(request: supervisor.RunRequest) -> supervisor.RunOutcome:
        echo = getattr(sys.stderr, "buffer", None)
        with open(log_path, "ab") as log_file:
            sys.stderr.flush()
            return supervisor.run(replace(request, sink=cast(BinaryIO, _Tee(log_file, echo))))

    return run


def announce_sandbox(settings: pipeline.Settings) -> str:
    mode, reason = job.sandbox_mode(settings.in_dir, settings.out_dir, settings.sandbox)  # as the run decides
    if mode == "bwrap":
        log.info("sandbox: bubblewrap: the job sees the task at /in (read-only) and /out, as in YMIR")
    elif mode == "fallback":
        log.warning(
            "sandbox: none (%s): falling back to mapped paths on this machine (env.yaml, config.yaml "
            "and the index files rewritten); code that hard-codes /in or /out fails here, and a write "
            "into /in is found after the job",
            reason,
        )
    return mode


def explain(e: LiveCodeError) -> LiveCodeError:
    """The error with a hint that says what it means for a YMIR task (a write into /in)."""
    if isinstance(e, JobError) and "Read-only file system" in e.message and contract.IN_DIR in e.message:
        msg = f"the job wrote into {contract.IN_DIR}, which is read-only in YMIR: {e.message}"
        err = JobError(msg, value=e.value, hint="write caches and temporary files under /out or /tmp, never /in")
        err.__cause__ = e
        return err
    if isinstance(e, SourceError) and "is a branch" in e.message:
        return SourceError(e.message, value=e.value, hint="pin a tag or a commit, or pass --allow-branch")
    return e


def annotate_provenance(out_dir: Path, extra: Mapping[str, Any]) -> None:
    """Add ``extra`` to the run's provenance records (out/ and, for training, out/models)."""
    for path in (out_dir / pipeline.PROVENANCE_NAME, out_dir / "models" / pipeline.PROVENANCE_NAME):
        if path.is_file():
            record = yaml.safe_load(path.read_text()) or {}
            record.update(extra)
            util.atomic_write(path, util.redact(yaml.safe_dump(record, sort_keys=False, allow_unicode=True)))
