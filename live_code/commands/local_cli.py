"""``live-code local``'s command line: its options, and the lines (or JSON document) that say
where the task dir, the job's log, the outputs and the provenance are. The run itself is
``live_code.commands.local``, imported only when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from live_code.commands._cli import (
    TASK_CHOICES,
    Subparsers,
    error_doc,
    format_options,
    json_option,
    parse_overrides,
    print_json,
    sandbox_option,
)

if TYPE_CHECKING:
    from live_code.commands.local import LocalRequest


def add_parser(sub: Subparsers) -> None:
    lo = sub.add_parser("local", help="build a task dir from a dataset as YMIR would and run a repo on it")
    lo.add_argument(
        "--repo",
        required=True,
        help="PATH_OR_URL@PIN (a commit or tag), or a local folder without a pin "
        "(its files as they are now, committed into a snapshot)",
    )
    lo.add_argument("--task", required=True, choices=sorted(TASK_CHOICES), help="the task kind to run")
    lo.add_argument(
        "--dataset", required=True, help="`sample`, a task dir, a folder of images (+ VOC xml) or a COCO json"
    )
    lo.add_argument("--config", type=Path, dest="config_file", help="YAML file of hyper-parameters (config.yaml keys)")
    lo.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="one hyper-parameter (the value is read as YAML), after --config; repeatable",
    )
    lo.add_argument(
        "--model",
        type=Path,
        help="an earlier run's out/models or a YMIR model package: mining/infer use "
        "it (model_params_path), training finetunes from it (pretrained_model_params)",
    )
    lo.add_argument("--stage", help="the model stage to use (default: the best)")
    lo.add_argument("--classes", help="comma-separated class names (default: from the data or the model)")
    _add_dataset_options(lo)
    _add_run_options(lo)
    json_option(lo)
    lo.set_defaults(func=cmd_local)


def _add_dataset_options(lo: argparse.ArgumentParser) -> None:
    format_options(
        lo,
        default="voc",
        format_help="annotation format of a converted dataset (default: %(default)s)",
        protocol_help="the YMIR protocol version of the task dir (default: %(default)s)",
    )
    lo.add_argument("--images", type=int, default=24, help="images of --dataset sample (default: %(default)s)")


def _add_run_options(lo: argparse.ArgumentParser) -> None:
    lo.add_argument("--work", type=Path, help="the task dir to create (default: ./live-code-work/<task>-<time>)")
    lo.add_argument(
        "--allow-branch", action="store_true", help="accept a branch or HEAD as the pin (recorded with its commit)"
    )
    sandbox_option(lo, "bubblewrap for /in (read-only) and /out (default: auto, or $LIVE_CODE_SANDBOX)")
    lo.add_argument(
        "--keep-work", action="store_true", help="keep the run's source checkout and HOME under the task dir"
    )
    lo.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="after the run, write its infer-result.json and result.tsv into DIR with the images' own names",
    )


def cmd_local(args: argparse.Namespace) -> int:
    from live_code.commands import local

    result = local.run(_request(args))
    exported = local.export_results(result.work, args.export) if args.export and result.error is None else []
    names = result.work / local.NAMES
    if args.json:
        err = result.error
        print_json(
            {
                "ok": result.ok,
                "task": args.task,
                "task_dir": str(result.work),
                "out_dir": str(result.out_dir),
                "names": str(names) if names.is_file() else None,
                "exported": [str(p) for p in exported],
                "provenance": str(result.provenance),
                "job_log": str(result.job_log),
                "sandbox": result.sandbox,
                "dataset": result.dataset.summary(),
                "error": None if err is None else error_doc(err),
            }
        )
        return 0 if err is None else err.exit_code
    print(f"task dir:   {result.work}  (replay it with: live-code replay {result.work})")
    print(f"job log:    {result.job_log}")
    if names.is_file():
        print(f"names:      {names}  (each asset's original file)")
    for path in exported:
        print(f"exported:   {path}  (with the images' own names)")
    print(f"outputs:    {result.out_dir}")
    print(f"provenance: {result.provenance}")
    if result.error is not None:
        raise result.error
    print(f"live-code: {args.task} succeeded; outputs are valid (dataset: {result.dataset.summary()})")
    return 0


def _request(args: argparse.Namespace) -> LocalRequest:
    from live_code.commands import local

    return local.LocalRequest(
        repo=args.repo,
        kinds=TASK_CHOICES[args.task],
        dataset=args.dataset,
        work=args.work,
        config_file=args.config_file,
        overrides=parse_overrides(args.overrides),
        model=args.model,
        stage=args.stage,
        classes=tuple(c.strip() for c in (args.classes or "").split(",") if c.strip()),
        fmt=args.fmt,
        protocol=args.protocol,
        sample_images=args.images,
        allow_branch=args.allow_branch,
        sandbox=args.sandbox,
        keep_work=args.keep_work,
    )
