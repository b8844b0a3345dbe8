"""The ``live-code`` command line. The only module that prints or chooses exit codes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from live_code import __version__, contract
from live_code.errors import (
    EXIT_INTERNAL,
    CacheError,
    ConfigError,
    DatasetError,
    EnvironmentBuildError,
    JobError,
    LiveCodeError,
    OutputError,
    SourceError,
)
from live_code.source import store as store_mod

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


#: the exit codes of every command (``live-code --help`` and the README show this table)
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success (replay: the outputs are identical)"),
    (1, "failed: check found problems, replay's outputs differ, or another error"),
    (ConfigError.exit_code, "bad usage, configuration, path or hyper-parameter"),
    (SourceError.exit_code, "the repository or its pin could not be resolved or fetched"),
    (EnvironmentBuildError.exit_code, "the job's environment could not be built (or the base lacks its framework)"),
    (JobError.exit_code, "the job failed, timed out or was stopped"),
    (OutputError.exit_code, "the job's outputs break the YMIR contract"),
    (CacheError.exit_code, "the cache cannot be used"),
    (DatasetError.exit_code, "the dataset cannot be read"),
    (EXIT_INTERNAL, "a bug in live-code (a crash log is written)"),
    (130, "interrupted (Ctrl-C); 128+N: stopped by signal N"),
)
#: the commands with ``--json``: one JSON document on stdout (keys in the README)
JSON_COMMANDS = ("local", "check", "validate", "cache ls", "report")


def _epilog() -> str:
    rows = "\n".join(f"  {code:>3}  {what}" for code, what in EXIT_CODES)
    return (
        "global options (-v, -q) go before or after the command. live-code's own messages go to stderr, "
        f"results to stdout.\n\nexit codes:\n{rows}"
    )


def _global_options(top: bool) -> argparse.ArgumentParser:
    """-v/-q, accepted before and after the command (as pip and git do); a subcommand leaves the
    value alone unless given there."""
    g = argparse.ArgumentParser(add_help=False)
    default = False if top else argparse.SUPPRESS
    opts = g.add_argument_group("global options")
    opts.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug details (on stderr)")
    opts.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="only warnings and errors on stderr (results still go to stdout)",
    )
    return g


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print one JSON document on stdout instead of text (its keys are in the README)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="live-code",
        description="Run YMIR tasks from a pinned git repository.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(top=True)],
    )
    p.add_argument("--version", action="version", version=f"live-code {__version__}")
    p.set_defaults(json=False)
    common = _global_options(top=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_SubParser)
    sub.required = True
    _SubParser.parents_for_all = [common]

    s = sub.add_parser("sample-dataset", help="write a small YMIR task directory (DIR/in, DIR/out) with known boxes")
    s.add_argument("dir", type=Path, help="directory to create; DIR/in and DIR/out are written")
    s.add_argument(
        "--task", choices=sorted(TASK_CHOICES), default="training", help="the task kind (default: %(default)s)"
    )
    s.add_argument(
        "--format",
        choices=("ark", "voc", "coco"),
        default="ark",
        dest="fmt",
        help="annotation format of the assets (default: %(default)s)",
    )
    s.add_argument(
        "--protocol",
        choices=contract.PROTOCOL_VERSIONS,
        default=contract.PROTOCOL_1_1_0,
        help="the YMIR protocol version of env.yaml (default: %(default)s)",
    )
    s.add_argument("--images", type=int, default=24, help="number of images (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed for the drawn images")
    s.add_argument("--force", action="store_true", help="replace DIR/in and DIR/out if they are not empty")
    s.set_defaults(func=_cmd_sample_dataset)

    r = sub.add_parser(
        "run", help="run the task in /in (or --in DIR) and write /out (or --out DIR): the image's default command"
    )
    r.add_argument(
        "--in", dest="in_dir", type=Path, default=Path(contract.IN_DIR), help="the task's in dir (default: %(default)s)"
    )
    r.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=Path(contract.OUT_DIR),
        help="the task's out dir (default: %(default)s)",
    )
    r.add_argument(
        "--sandbox",
        choices=("auto", "on", "off"),
        default=None,
        help="run the job with the dirs at /in and /out through bubblewrap (default: auto, or $LIVE_CODE_SANDBOX)",
    )
    r.add_argument("--work", type=Path, default=None, help="where the run's working dir goes (default: the temp dir)")
    r.add_argument(
        "--keep-work", action="store_true", help="keep the run's working dir (source checkout, HOME) for debugging"
    )
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("validate", help="check a task's outputs against the YMIR contract")
    v.add_argument(
        "--in", dest="in_dir", type=Path, default=Path(contract.IN_DIR), help="the task's in dir (default: %(default)s)"
    )
    v.add_argument(
        "--out",
        dest="out_dir",
        type=Path,
        default=Path(contract.OUT_DIR),
        help="the task's out dir (default: %(default)s)",
    )
    _json_option(v)
    v.set_defaults(func=_cmd_validate)

    c = sub.add_parser("cache", help="list or clean the cache of mirrors and environments")
    csub = c.add_subparsers(dest="cache_command", metavar="ACTION")
    csub.required = True
    ls = csub.add_parser("ls", help="list cached mirrors and environments")
    _json_option(ls)
    ls.set_defaults(func=_cmd_cache_ls)
    gc = csub.add_parser("gc", help="remove old or excess entries (never one in use)")
    gc.add_argument("--max-size", type=_size, help="keep the cache under this size, e.g. 20G")
    gc.add_argument("--max-age", type=_age, help="remove entries unused for this long, e.g. 30d")
    gc.set_defaults(func=_cmd_cache_gc)
    _add_research_commands(sub)
    return p


class _SubParser(argparse.ArgumentParser):
    """Every subcommand (and ``cache ls``/``cache gc``) takes the global options too."""

    parents_for_all: list[argparse.ArgumentParser] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parents"] = [*kwargs.get("parents", []), *self.parents_for_all]
        kwargs.setdefault("epilog", "exit codes: see live-code --help")
        super().__init__(*args, **kwargs)


def _cmd_sample_dataset(args: argparse.Namespace) -> int:
    from live_code.commands import sample

    if args.images < 1:
        raise ConfigError("--images must be at least 1", value=args.images, hint="pass --images 8 or more")
    info = sample.write_sample_dataset(
        args.dir,
        kinds=TASK_CHOICES[args.task],
        fmt=args.fmt,
        protocol=args.protocol,
        images=args.images,
        seed=args.seed,
        force=args.force,
    )
    print(info.summary())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from live_code.run import pipeline

    overrides = {"in_dir": args.in_dir, "out_dir": args.out_dir, "work_root": args.work, "keep_work": args.keep_work}
    if args.sandbox:
        overrides["sandbox"] = args.sandbox
    settings = pipeline.Settings.from_environ(**overrides)
    pipeline.run(settings)
    print(f"live-code: run succeeded; outputs are valid (provenance: {args.out_dir / pipeline.PROVENANCE_NAME})")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from live_code.run import outputs
    from live_code.task import config

    task = config.load_task(args.in_dir, out_dir=args.out_dir)
    index = task.env.input.candidate_index_file
    candidates = outputs.read_candidates(task.host_path(index)) if index else None
    problems = outputs.validate_outputs(task.kinds, args.out_dir, task.protocol, task.config.class_names, candidates)
    problems += outputs.validate_monitor(args.out_dir / "monitor.txt", task.task_id)
    kinds = "+".join(k.value for k in task.ordered_kinds)
    if args.json:
        errors = [p for p in problems if p.severity != outputs.WARNING]
        _print_json(
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


def _cmd_cache_ls(args: argparse.Namespace) -> int:
    st = store_mod.Store()
    entries = st.entries()
    if args.json:
        _print_json(
            {
                "root": str(st.root),
                "total_size": sum(e.size for e in entries),
                "entries": [
                    {
                        "kind": e.kind,
                        "key": e.key,
                        "size": e.size,
                        "last_used": e.last_used,
                        "complete": e.complete,
                        "what": e.meta.get("url") or e.meta.get("summary") or "",
                    }
                    for e in entries
                ],
            }
        )
        return 0
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


# -- for researchers: local, check, replay, init, prefetch, report (live_code.commands.local and friends) --


def _add_research_commands(sub: argparse._SubParsersAction) -> None:
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
    lo.add_argument(
        "--format",
        choices=("ark", "voc", "coco"),
        default="voc",
        dest="fmt",
        help="annotation format of a converted dataset (default: %(default)s)",
    )
    lo.add_argument(
        "--protocol",
        choices=contract.PROTOCOL_VERSIONS,
        default=contract.PROTOCOL_1_1_0,
        help="the YMIR protocol version of the task dir (default: %(default)s)",
    )
    lo.add_argument("--images", type=int, default=24, help="images of --dataset sample (default: %(default)s)")
    lo.add_argument("--work", type=Path, help="the task dir to create (default: ./live-code-work/<task>-<time>)")
    lo.add_argument(
        "--allow-branch", action="store_true", help="accept a branch or HEAD as the pin (recorded with its commit)"
    )
    lo.add_argument(
        "--sandbox",
        choices=("auto", "on", "off"),
        default=None,
        help="bubblewrap for /in (read-only) and /out (default: auto, or $LIVE_CODE_SANDBOX)",
    )
    lo.add_argument(
        "--keep-work", action="store_true", help="keep the run's source checkout and HOME under the task dir"
    )
    lo.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="after the run, write its infer-result.json and result.tsv into DIR with the images' own names",
    )
    _json_option(lo)
    lo.set_defaults(func=_cmd_local)

    ch = sub.add_parser(
        "check", help="check a repo: manifest, entries, requirements, schema, and a smoke run per task kind"
    )
    ch.add_argument("repo", help="PATH_OR_URL[@PIN]; a local folder without a pin is checked as it is now")
    ch.add_argument("--static", action="store_true", help="only the static checks (no environment, no run)")
    ch.add_argument("--allow-branch", action="store_true", help="accept a branch or HEAD as the pin")
    ch.add_argument("--work", type=Path, help="keep the smoke runs' task dirs here (default: a temp dir, removed)")
    ch.add_argument(
        "--sandbox",
        choices=("auto", "on", "off"),
        default=None,
        help="bubblewrap for the smoke runs (default: auto, or $LIVE_CODE_SANDBOX)",
    )
    ch.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="a hyper-parameter of every smoke run (read as YAML), e.g. a small model; repeatable",
    )
    _json_option(ch)
    ch.set_defaults(func=_cmd_check)

    rp = sub.add_parser(
        "replay", help="re-run a kept task dir (in/, out/) into WORKDIR/replay-<n>/out and diff the outputs"
    )
    rp.add_argument("workdir", type=Path, help="the kept task dir: in/, out/ (and task_config.yaml)")
    rp.add_argument(
        "--sandbox",
        choices=("auto", "on", "off"),
        default=None,
        help="bubblewrap for /in and /out (default: auto, or $LIVE_CODE_SANDBOX)",
    )
    rp.add_argument("--keep-work", action="store_true", help="keep the replay's source checkout and HOME")
    rp.add_argument(
        "--resolve", action="store_true", help="resolve the requirements afresh, not install the recorded lock"
    )
    rp.set_defaults(func=_cmd_replay)

    from live_code.commands import lock as lock_cmd

    lock_cmd.add_parser(sub)

    it = sub.add_parser("init", help="a new git repo from a template, first commit made, ready to push")
    it.add_argument("dir", type=Path, nargs="?", help="the new repository's folder (must not exist or be empty)")
    it.add_argument(
        "--template", default="minimal", help="minimal, yolov5, mmdet, detectron2, ... (default: %(default)s)"
    )
    it.add_argument("--list", action="store_true", help="list the templates there are")
    it.set_defaults(func=_cmd_init)

    pf = sub.add_parser("prefetch", help="warm the cache (source and environment) for URL at PIN")
    pf.add_argument("url", help="the repository's URL (or a local path)")
    pf.add_argument("pin", help="a commit or tag (a branch with --allow-branch)")
    pf.add_argument("--source-only", action="store_true", help="fetch the source only, build no environment")
    pf.add_argument("--allow-branch", action="store_true", help="accept a branch as the pin")
    pf.add_argument("--index-url", help="as the task's pip_index_url (the env key includes the index settings)")
    pf.add_argument("--extra-index-url", action="append", default=[], help="as pip_extra_index_urls")
    pf.add_argument("--find-links", action="append", default=[], help="as pip_find_links (a wheelhouse)")
    pf.add_argument("--offline", action="store_true", help="as pip_offline: true")
    pf.set_defaults(func=_cmd_prefetch)

    rr = sub.add_parser(
        "report",
        help="pictures (predictions, curves, mining, stages, timings) and an HTML page of "
        'task outputs; the pictures need the report extra: pip install "live-code[report]"',
    )
    rr.add_argument("outs", nargs="+", type=Path, metavar="OUT", help="a task's out dir; two or more are compared")
    rr.add_argument(
        "--in",
        dest="in_dirs",
        action="append",
        type=Path,
        default=[],
        help="the task's in dir, once per OUT (default: the in next to each OUT)",
    )
    rr.add_argument(
        "--dest", type=Path, help="where report.html and the PNGs go (default: report next to the task dirs)"
    )
    rr.add_argument("--images", type=int, default=4, help="images to draw predictions on (default: %(default)s)")
    _json_option(rr)
    rr.set_defaults(func=_cmd_report)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as hyper-parameters (each value read as YAML)."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError("--set takes KEY=VALUE", value=item, hint="e.g. --set epochs=5")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return overrides


def _cmd_local(args: argparse.Namespace) -> int:
    from live_code.commands import local

    overrides = _parse_overrides(args.overrides)
    req = local.LocalRequest(
        repo=args.repo,
        kinds=TASK_CHOICES[args.task],
        dataset=args.dataset,
        work=args.work,
        config_file=args.config_file,
        overrides=overrides,
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
    result = local.run(req)
    exported = local.export_results(result.work, args.export) if args.export and result.error is None else []
    names = result.work / local.NAMES
    if args.json:
        err = result.error
        _print_json(
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
                "error": None if err is None else _error_doc(err),
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


def _cmd_check(args: argparse.Namespace) -> int:
    from live_code.commands import check

    report = check.check_repo(
        args.repo,
        static_only=args.static,
        allow_branch=args.allow_branch,
        work=args.work,
        sandbox=args.sandbox,
        overrides=_parse_overrides(args.overrides),
    )
    if args.json:
        _print_json(
            {
                "ok": not report.problems,
                "repo": report.repo,
                "commit": report.commit,
                "findings": [f._asdict() for f in report.findings],
            }
        )
        return 1 if report.problems else 0
    print(report.render())
    if report.problems:
        raise LiveCodeError(
            f"check found {len(report.problems)} problem(s) in {report.repo}",
            hint="each FAIL line above says what to fix",
        )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from live_code.commands import replay

    result = replay.replay(args.workdir, sandbox=args.sandbox, keep_work=args.keep_work, resolve=args.resolve)
    print(result.render())
    if result.error is not None:
        raise result.error
    return 0 if result.identical else 1


def _cmd_init(args: argparse.Namespace) -> int:
    from live_code.commands import init as templates

    if args.list:
        print("templates: " + ", ".join(templates.available()) + f"  (in {templates.templates_dir()})")
        return 0
    if args.dir is None:
        raise ConfigError("init needs a DIR", hint="e.g. live-code init --template minimal my-detector")
    sha = templates.init(args.template, args.dir)
    print(f"created {args.dir} from the {args.template} template (commit {sha[:12]}). Next:")
    print(f"  cd {args.dir} && git remote add origin <URL> && git push -u origin main")
    print("  git tag v1 && git push origin v1      # pin tasks to the tag: git_url <URL>, git_tag v1")
    print(f"  live-code check {args.dir}            # static checks and a smoke run of every task kind")
    return 0


def _cmd_prefetch(args: argparse.Namespace) -> int:
    from live_code.commands import local
    from live_code.envs import builder as envs

    index = envs.IndexSettings(
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_url),
        find_links=tuple(args.find_links),
        offline=args.offline,
    )
    cached = local.prefetch(args.url, args.pin, index=index, allow_branch=args.allow_branch, env=not args.source_only)
    print(f"source: {cached['url']} at {args.pin} = commit {cached['commit']} (mirror {cached['mirror'][:16]})")
    if "env" in cached:
        print(f"env:    {cached['env']} ({cached['env_packages']})")
    print(f"cache:  {store_mod.Store().root}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from live_code.commands import report

    result = report.write_report(args.outs, dest=args.dest, in_dirs=args.in_dirs, images=args.images)
    if args.json:
        _print_json({"html": str(result.html), "pictures": [str(p) for p in result.pngs], "notes": list(result.notes)})
        return 0
    for note in result.notes:  # the report is written all the same: warnings, exit 0
        print(f"live-code: warning: {note}", file=sys.stderr)
    print(f"report: {result.html} ({len(result.pngs)} pictures)")
    return 0


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True, default=str))


def _error_doc(e: LiveCodeError) -> dict[str, Any]:
    return {"message": e.message, "hint": e.hint, "exit_code": e.exit_code, "kind": type(e).__name__}


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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v and -q exclude each other")
    import logging

    from live_code import progress

    handler = progress.install(args.verbose)  # plain "live-code: ..." lines; one status line in a terminal
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        try:
            return int(args.func(args))
        finally:
            if handler is not None:
                handler.close()  # a live status line ends before any message below
    except LiveCodeError as e:
        print(e.render(), file=sys.stderr)
        if args.json:  # a script still gets one document
            _print_json({"ok": False, "error": _error_doc(e)})
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
