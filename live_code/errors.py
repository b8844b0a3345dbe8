"""One error hierarchy for the harness.

Every user-facing failure is a :class:`LiveCodeError` carrying what failed (``message``), the value
involved (``value``) and what to try (``hint``). Each class has a fixed process exit code and the YMIR
executor return code that goes into ``monitor.txt`` field 5 (ymir-contract.md 9.2).

This module imports nothing from ``live_code`` so that every other module may import it.

    LiveCodeError                     exit 1   any harness failure
    +-- ConfigError                   exit 2   env.yaml / config.yaml / manifest / schema
    +-- SourceError                   exit 3   git: URL, ref, fetch, tag moved
    |   +-- UnsafeSourceError                  refused before git runs
    +-- EnvironmentBuildError         exit 4   venv or requirements install
    |   +-- RequirementError                   a refused requirement line
    +-- JobError                      exit 5   the user's entry point failed
    +-- OutputError                   exit 6   outputs missing or invalid
    +-- CacheError                    exit 7   the cache dir is unusable
    +-- DatasetError                  exit 8   the task's dataset cannot be read

The CLI maps anything else to exit 70 (internal error, traceback written to a log file) and Ctrl-C
or a forwarded signal to 128 + signal number.
"""

from __future__ import annotations

from typing import Any

# The YMIR executor return codes used here (ymir_exc.code.ExecutorReturnCode, contract 9.2).
# They are duplicated from contract.py on purpose: this module must not import live_code.
_RC_CONFIG = 300001
_RC_DATASET = 300002
_RC_NETWORK = 300301
_RC_CONTAINER = 160004

EXIT_INTERNAL = 70


class LiveCodeError(Exception):
    """A failure the user can act on."""

    exit_code = 1
    ymir_code = _RC_CONTAINER
    #: short kebab-case name of the failure class, shown as ``error: <kind>``
    kind = "live-code-error"

    def __init__(self, message: str, *, value: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.hint = hint

    def render(self) -> str:
        """The paragraph the CLI prints: message, then the value and the hint on their own lines."""
        lines = [f"error: {self.kind}: {self.message}"]
        if self.value is not None:
            lines.append(f"  value: {self.value!r}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def one_line(self) -> str:
        """The reason that goes into monitor.txt and provenance."""
        return f"{self.kind}: {self.message}"


class ConfigError(LiveCodeError):
    """env.yaml, config.yaml, a repo manifest or a hyper-parameter is wrong."""

    exit_code = 2
    ymir_code = _RC_CONFIG
    kind = "config-error"


class DatasetError(LiveCodeError):
    """An index file or annotation of the task cannot be read."""

    exit_code = 8
    ymir_code = _RC_DATASET
    kind = "dataset-error"


class SourceError(LiveCodeError):
    """The pinned source could not be resolved or fetched."""

    exit_code = 3
    ymir_code = _RC_NETWORK
    kind = "source-error"


class UnsafeSourceError(SourceError):
    """A URL or ref was refused before git ran."""

    ymir_code = _RC_CONFIG
    kind = "unsafe-source"


class EnvironmentBuildError(LiveCodeError):
    """The job environment could not be built."""

    exit_code = 4
    kind = "environment-error"


class RequirementError(EnvironmentBuildError):
    """A requirement line was refused (index options, unpinned VCS, protected framework, ...)."""

    ymir_code = _RC_CONFIG
    kind = "requirement-refused"


class JobError(LiveCodeError):
    """The user's entry point failed, timed out or was stopped."""

    exit_code = 5
    kind = "job-failed"


class OutputError(LiveCodeError):
    """The job exited 0 but its outputs are missing or do not follow the contract."""

    exit_code = 6
    ymir_code = 160011  # RC_CMD_NO_RESULT, what the platform itself would report
    kind = "invalid-outputs"


class CacheError(LiveCodeError):
    """The cache directory cannot be used."""

    exit_code = 7
    kind = "cache-error"
