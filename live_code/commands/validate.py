"""``live-code validate``: check a task's outputs against the YMIR contract, as the run's gate does
(``live_code.run.outputs``), without running anything."""

from __future__ import annotations

import argparse

from live_code.commands._cli import Subparsers, in_out_options, json_option, print_json
from live_code.errors import OutputError


def add_parser(sub: Subparsers) -> None:
    v = sub.add_parser("validate", help="check a task's outputs against the YMIR contract")
    in_out_options(v)
    json_option(v)
    v.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from live_code.run import outputs  # here: the command line starts without the gate's imports
    from live_code.task import config

    task = config.load_task(args.in_dir, out_dir=args.out_dir)
    index = task.env.input.candidate_index_file
    candidates = outputs.read_candidates(task.host_path(index)) if index else None
    problems = outputs.validate_outputs(task.kinds, args.out_dir, task.protocol, task.config.class_names, candidates)
    problems += outputs.validate_monitor(args.out_dir / "monitor.txt", task.task_id)
    kinds = "+".join(k.value for k in task.ordered_kinds)
    if args.json:
        errors = [p for p in problems if p.severity != outputs.WARNING]
        print_json(
            {
                "ok": not errors,
                "task_id": task.task_id,
                "kinds": kinds,
                "protocol": task.protocol,
                "problems": [
                    {"severity": "warning" if p.severity == outputs.WARNING else "error", "message": str(p)}
                    for p in problems
                ],
            }
        )
        return OutputError.exit_code if errors else 0
    for p in problems:
        print(f"  warning: {p}" if p.severity == outputs.WARNING else f"  {p}")
    outputs.raise_for_problems(problems)  # errors only: YMIR accepts what is merely warned
    warned = sum(p.severity == outputs.WARNING for p in problems)
    note = f", with {warned} warning(s): YMIR accepts them" if warned else ""
    print(f"outputs of {kinds} task {task.task_id} are valid (protocol {task.protocol}){note}")
    return 0
