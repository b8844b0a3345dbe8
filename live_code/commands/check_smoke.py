"""The smoke runs of ``live-code check``: every task kind the repository declares, through
``live-code local`` on a generated tiny sample dataset (training first; mining and infer get its
model, or an empty models dir when the repo does not train), each output validated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from live_code import contract
from live_code.commands import local
from live_code.commands.check import FAIL, OK, SKIP, WARN, CheckReport
from live_code.contract import TaskKind
from live_code.errors import JobError, LiveCodeError, OutputError
from live_code.source.store import Store
from live_code.task import manifest as manifest_mod


def smoke(
    report: CheckReport,
    repo: str,
    manifest: manifest_mod.Manifest,
    root: Path,
    sandbox: str | None,
    store: Store,
    overrides: Mapping[str, Any],
    *,
    kept: bool = False,
) -> None:
    """One smoke run per task kind; ``kept``: the task dirs stay (``--work``), so a failure may
    point at its own."""
    declared = frozenset(manifest.entries)
    trains = TaskKind.TRAINING in declared
    completed = 0
    runs: list[frozenset[TaskKind]] = []
    if TaskKind.TRAINING in declared:
        runs.append(frozenset({TaskKind.TRAINING}))
    if declared & {TaskKind.MINING, TaskKind.INFER}:
        runs.append(declared & {TaskKind.MINING, TaskKind.INFER})
    model: Path | None = None
    mode = ""
    for kinds in runs:
        name = "+".join(k.value for k in contract.TASK_ORDER if k in kinds)
        training = TaskKind.TRAINING in kinds
        req = local.LocalRequest(
            repo=repo,
            kinds=kinds,
            dataset="sample",
            work=root / name.replace("+", "-"),
            model=None if training else model,
            sample_images=8,
            sandbox=sandbox,
            overrides=_overrides_for(manifest, kinds, overrides),
        )
        start = time.monotonic()
        try:
            result = local.run(req, store=store)
        except LiveCodeError as e:  # the work dir could not be made
            report.add(f"smoke {name}", FAIL, e.message, e.hint or "")
            continue
        mode = result.sandbox
        if result.ok:
            completed += 1
            note = "" if training or model else _without_model(trains)
            _passed(report, name, result, f"{time.monotonic() - start:.1f} s{note}")
            model = result.out_dir / "models" if training else model
            continue
        _report_failure(report, name, result.error, training, model, result.work, trains=trains, kept=kept)
    _writes_into_in(report, mode, all_done=completed == len(runs))


def _passed(report: CheckReport, name: str, result: local.LocalResult, took: str) -> None:
    report.add(f"smoke {name}", OK, f"ran and wrote valid outputs in {took}")
    warned = _output_warnings(result.provenance)
    if warned:
        report.add(
            f"outputs of {name}",
            WARN,
            "\n".join(warned),
            "YMIR reads these outputs as they are; write the format of ymir-contract.md to be exact",
        )


def _writes_into_in(report: CheckReport, mode: str, *, all_done: bool) -> None:
    """The finding on writes into /in, unless a smoke run already made one."""
    if not mode or any(f.check == "no writes into /in" for f in report.findings):
        return
    if not all_done:
        why = "not known: a smoke run did not complete, so its job may not have reached its writes"
        report.add("no writes into /in", SKIP, why)
        return
    how = (
        "the smoke runs saw /in read-only, as in YMIR"
        if mode == "bwrap"
        else "no sandbox: in/ was compared before and after each smoke run, and was unchanged"
    )
    report.add("no writes into /in", OK, how)


def _output_warnings(provenance: Path) -> list[str]:
    """The gate's warnings a run recorded in its provenance."""
    try:
        record = yaml.safe_load(provenance.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    warned = record.get("warnings") if isinstance(record, dict) else None
    return [str(w) for w in warned] if isinstance(warned, list) else []


def _overrides_for(
    manifest: manifest_mod.Manifest, kinds: frozenset[TaskKind], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``--set`` of check for one smoke run: a key the schema declares only for other task kinds
    (``epochs`` for the mining+infer run) is left out; an unknown one stays, so the run refuses it."""
    elsewhere = {n for k, params in manifest.schema.items() if k not in kinds for n in params}
    here = {n for k in kinds for n in manifest.schema.get(k, {})}
    return {k: v for k, v in overrides.items() if k in here or k not in elsewhere}


def _without_model(trains: bool) -> str:
    return (
        " (without a model: the training smoke run failed)"
        if trains
        else " (without a model: the repo declares no training)"
    )


def _report_failure(
    report: CheckReport,
    name: str,
    error: LiveCodeError | None,
    training: bool,
    model: Path | None,
    work: Path,
    *,
    trains: bool,
    kept: bool,
) -> None:
    assert error is not None
    log_file = work / local.JOB_LOG
    where = (
        f"(the task is kept in {work}; the job's output is in {log_file})"
        if kept
        else "(the task dir was removed: run check with --work DIR to keep it)"
    )
    if isinstance(error, JobError) and "read-only in YMIR" in error.message:
        report.add("no writes into /in", FAIL, f"{name}: {error.message}", error.hint or "")
    elif isinstance(error, OutputError):
        report.add(
            f"outputs of {name}",
            FAIL,
            error.message,
            "write results with live_code.sdk (write_model_stage, write_mining_result, write_infer_result), "
            "or follow the formats of ymir-contract.md",
        )
    else:
        note = "" if training or model else _without_model(trains)
        hint = error.hint if error.hint and "output above" not in error.hint and "job.log" not in error.hint else ""
        report.add(
            f"smoke {name}",
            FAIL,
            f"{error.one_line()}{note} {where}",
            hint
            or (
                "read the job's output in " + str(log_file)
                if kept
                else "run live-code check --work DIR again and read DIR/smoke/<task>/job.log"
            ),
        )
