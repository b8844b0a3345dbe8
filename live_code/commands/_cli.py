"""What every command's command-line part shares: the task choices, ``--json``, ``--set``, the
``--in``/``--out`` pair, and the one way a JSON document or an error is printed.

A command module that has a command line of its own (``local``, ``cache``, ``prefetch``,
``validate``) holds an ``add_parser(subparsers)`` and the handler it sets; ``live_code.cli`` calls
``add_parser`` and dispatches to the handler."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from live_code import __version__, contract, util
from live_code.errors import ConfigError, LiveCodeError

#: ``--task`` values and the task kinds each runs
TASK_CHOICES = {
    "training": frozenset({contract.TaskKind.TRAINING}),
    "mining": frozenset({contract.TaskKind.MINING}),
    "infer": frozenset({contract.TaskKind.INFER}),
    "mining+infer": frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}),
}

#: what ``add_subparsers()`` returns (argparse names it a private class)
Subparsers = argparse._SubParsersAction


def json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print one JSON document on stdout instead of text (its keys are in the README)",
    )


def sandbox_option(p: argparse.ArgumentParser, help: str) -> None:
    """``--sandbox auto|on|off`` (None when not given: ``$LIVE_CODE_SANDBOX`` or auto)."""
    p.add_argument("--sandbox", choices=("auto", "on", "off"), default=None, help=help)


def format_options(p: argparse.ArgumentParser, *, default: str, format_help: str, protocol_help: str) -> None:
    """``--format`` (ark, voc, coco) and ``--protocol`` of a task dir that a command writes."""
    p.add_argument("--format", choices=("ark", "voc", "coco"), default=default, dest="fmt", help=format_help)
    p.add_argument(
        "--protocol", choices=contract.PROTOCOL_VERSIONS, default=contract.PROTOCOL_1_1_0, help=protocol_help
    )


def in_out_options(p: argparse.ArgumentParser) -> None:
    """``--in`` and ``--out``: the task's dirs, /in and /out by default."""
    p.add_argument(
        "--in", dest="in_dir", type=Path, default=Path(contract.IN_DIR), help="the task's in dir (default: %(default)s)"
    )
    p.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=Path(contract.OUT_DIR),
        help="the task's out dir (default: %(default)s)",
    )


def print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True, default=str))


def error_doc(e: LiveCodeError) -> dict[str, Any]:
    return {"message": e.message, "hint": e.hint, "exit_code": e.exit_code, "kind": type(e).__name__}


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as hyper-parameters (each value read as YAML)."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError("--set takes KEY=VALUE", value=item, hint="e.g. --set epochs=5")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return overrides


def write_crash_log(argv: Sequence[str]) -> Path:
    """The traceback and versions, laid out to paste into a bug report (pre-commit's habit)."""
    import tempfile
    import traceback

    from live_code.source import store as store_mod

    try:
        logs = store_mod.Store().logs_dir
    except LiveCodeError:
        logs = Path(tempfile.gettempdir())
    path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = (
        f"live-code {__version__}\npython {sys.version}\nplatform {util.platform_name()}\n"
        f"argv {' '.join(argv)}\n\n{traceback.format_exc()}"
    )
    path.write_text(util.redact(text))
    return path
