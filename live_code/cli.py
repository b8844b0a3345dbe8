"""The ``live-code`` command line. The only module that prints or chooses exit codes."""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from live_code import __version__
from live_code import contract
from live_code import store as store_mod
from live_code.errors import EXIT_INTERNAL
from live_code.errors import ConfigError
from live_code.errors import LiveCodeError

TASK_CHOICES = {
    "training": frozenset({contract.TaskKind.TRAINING}),
    "mining": frozenset({contract.TaskKind.MINING}),
    "infer": frozenset({contract.TaskKind.INFER}),
    "mining+infer": frozenset({contract.TaskKind.MINING, contract.TaskKind.INFER}),
}


def _size(text: str) -> int:
    """``500M``, ``2G``, ``1024`` -> bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        return int(float(num) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 500M, 2G)") from None


def _age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "s")
    try:
        return float(num) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an age: {text!r} (use e.g. 30d, 12h)") from None


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-code", description="Run YMIR tasks from a pinned git repository.")
    p.add_argument("--version", action="version", version=f"live-code {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("sample-dataset", help="write a small YMIR task directory (DIR/in, DIR/out) with known boxes")
    s.add_argument("dir", type=Path, help="directory to create; DIR/in and DIR/out are written")
    s.add_argument("--task", choices=sorted(TASK_CHOICES), default="training")
    s.add_argument("--format", choices=("ark", "voc", "coco"), default="ark", dest="fmt")
    s.add_argument("--protocol", choices=contract.PROTOCOL_VERSIONS, default=contract.PROTOCOL_1_1_0)
    s.add_argument("--images", type=int, default=24, help="number of images (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed for the drawn images")
    s.add_argument("--force", action="store_true", help="replace DIR/in and DIR/out if they are not empty")
    s.set_defaults(func=_cmd_sample_dataset)

    r = sub.add_parser("run", help="run the task in /in (or --in DIR) and write /out (or --out DIR): the image's default command")
    r.add_argument("--in", dest="in_dir", type=Path, default=Path(contract.IN_DIR), help="the task's in dir (default: %(default)s)")
    r.add_argument("--out", dest="out_dir", type=Path, default=Path(contract.OUT_DIR), help="the task's out dir (default: %(default)s)")
    r.add_argument("--sandbox", choices=("auto", "on", "off"), default=None,
                   help="run the job with the dirs at /in and /out through bubblewrap (default: auto, or $LIVE_CODE_SANDBOX)")
    r.add_argument("--work", type=Path, default=None, help="where the run's working dir goes (default: the temp dir)")
    r.add_argument("--keep-work", action="store_true", help="keep the run's working dir (source checkout, HOME) for debugging")
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("validate", help="check a task's outputs against the YMIR contract")
    v.add_argument("--in", dest="in_dir", type=Path, default=Path(contract.IN_DIR), help="the task's in dir (default: %(default)s)")
    v.add_argument("--out", dest="out_dir", type=Path, default=Path(contract.OUT_DIR), help="the task's out dir (default: %(default)s)")
    v.set_defaults(func=_cmd_validate)

    c = sub.add_parser("cache", help="list or clean the cache of mirrors and environments")
    csub = c.add_subparsers(dest="cache_command", metavar="ACTION")
    csub.required = True
    ls = csub.add_parser("ls", help="list cached mirrors and environments")
    ls.set_defaults(func=_cmd_cache_ls)
    gc = csub.add_parser("gc", help="remove old or excess entries (never one in use)")
    gc.add_argument("--max-size", type=_size, help="keep the cache under this size, e.g. 20G")
    gc.add_argument("--max-age", type=_age, help="remove entries unused for this long, e.g. 30d")
    gc.set_defaults(func=_cmd_cache_gc)
    return p


def _cmd_sample_dataset(args: argparse.Namespace) -> int:
    from live_code import sample

    if args.images < 1:
        raise ConfigError("--images must be at least 1", value=args.images, hint="pass --images 8 or more")
    info = sample.write_sample_dataset(
        args.dir, kinds=TASK_CHOICES[args.task], fmt=args.fmt, protocol=args.protocol, images=args.images,
        seed=args.seed, force=args.force,
    )
    print(info.summary())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from live_code import pipeline

    overrides = {"in_dir": args.in_dir, "out_dir": args.out_dir, "work_root": args.work, "keep_work": args.keep_work}
    if args.sandbox:
        overrides["sandbox"] = args.sandbox
    settings = pipeline.Settings.from_environ(**overrides)
    pipeline.run(settings)
    print(f"live-code: run succeeded; outputs are valid (provenance: {args.out_dir / pipeline.PROVENANCE_NAME})")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from live_code import config
    from live_code import outputs

    task = config.load_task(args.in_dir, out_dir=args.out_dir)
    index = task.env.input.candidate_index_file
    candidates = outputs.read_candidates(task.host_path(index)) if index else None
    problems = outputs.validate_outputs(task.kinds, args.out_dir, task.protocol, task.config.class_names, candidates)
    problems += outputs.validate_monitor(args.out_dir / "monitor.txt", task.task_id)
    kinds = "+".join(k.value for k in task.ordered_kinds)
    if problems:
        for p in problems:
            print(f"  {p}")
        outputs.raise_for_problems(problems)
    print(f"outputs of {kinds} task {task.task_id} are valid (protocol {task.protocol})")
    return 0


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    st = store_mod.Store()
    entries = st.entries()
    print(f"cache: {st.root}")
    if not entries:
        print("  (empty)")
        return 0
    now = time.time()
    for e in entries:
        state = "" if e.complete else "  (incomplete)"
        what = e.meta.get("url") or e.meta.get("summary") or ""
        age_h = (now - e.last_used) / 3600
        print(f"  {e.kind:<8} {e.key[:16]:<16} {_human(e.size):>10}  used {age_h:6.1f} h ago  {what}{state}")
    print(f"  total {_human(sum(e.size for e in entries))} in {len(entries)} entries")
    return 0


def _cmd_cache_gc(args: argparse.Namespace) -> int:
    if args.max_size is None and args.max_age is None:
        raise ConfigError("cache gc needs --max-size or --max-age", hint="e.g. live-code cache gc --max-age 30d")
    st = store_mod.Store()
    removed = st.gc(max_size=args.max_size, max_age=args.max_age)
    for e in removed:
        print(f"removed {e.kind}/{e.key} ({_human(e.size)})")
    print(f"removed {len(removed)} entries, freed {_human(sum(e.size for e in removed))}")
    return 0


def _write_crash_log(argv: Sequence[str]) -> Path:
    """The traceback and versions, laid out to paste into a bug report (pre-commit's habit)."""
    try:
        logs = store_mod.Store().logs_dir
    except LiveCodeError:
        logs = Path(tempfile.gettempdir())
    path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = (
        f"live-code {__version__}\npython {sys.version}\nplatform {platform.platform()}\n"
        f"argv {' '.join(argv)}\n\n{traceback.format_exc()}"
    )
    from live_code.util import redact

    path.write_text(redact(text))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="live-code: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except LiveCodeError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("live-code: interrupted", file=sys.stderr)
        return 130
    except BaseException as e:
        signum = getattr(e, "signum", None)  # pipeline.Stopped: SIGTERM from the platform
        if isinstance(signum, int):
            print(f"live-code: stopped by signal {signum}", file=sys.stderr)
            return 128 + signum
        if isinstance(e, Exception):
            path = _write_crash_log(argv)
            print(
                f"live-code: an unexpected error occurred (a bug in live-code). The traceback is in {path}; "
                "please attach it to a bug report.",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        raise
