"""The ``live-code`` command line: it parses the arguments, dispatches to a command's handler,
and turns errors (and signals, and crashes) into exit codes and messages on stderr.

A command with a module of its own adds its parser there (``add_parser(subparsers)``, which sets the
handler); the commands whose modules are libraries first (``sample-dataset``, ``run``, ``check``,
``replay``, ``init``, ``report``) have a small ``_add_*`` parser and ``_cmd_*`` handler here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from live_code import __version__
from live_code.commands._cli import (
    TASK_CHOICES,
    Subparsers,
    error_doc,
    format_options,
    in_out_options,
    json_option,
    parse_overrides,
    print_json,
    sandbox_option,
    write_crash_log,
)
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
from live_code.run import signals

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


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or, for ``command``, only its subparser under the top one: a run
    (the image's default command) does not build and import the other commands' parsers. Each
    command's parser is the same either way; ``live-code --help`` and an unknown or missing command
    get the whole."""
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
    for name, add in _COMMANDS.items():
        if command is None or name == command:
            add(sub)
    return p


def _module_parser(module: str) -> Callable[[Subparsers], None]:
    """The ``add_parser`` of a command with a module of its own, imported only when needed."""

    def add(sub: Subparsers) -> None:
        importlib.import_module(f"live_code.commands.{module}").add_parser(sub)

    return add


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when its first argument that is not a global option is one."""
    for arg in argv:
        if arg not in ("-v", "--verbose", "-q", "--quiet"):
            return arg if arg in _COMMANDS else None
    return None


class _SubParser(argparse.ArgumentParser):
    """Every subcommand (and ``cache ls``/``cache gc``) takes the global options too."""

    parents_for_all: list[argparse.ArgumentParser] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parents"] = [*kwargs.get("parents", []), *self.parents_for_all]
        kwargs.setdefault("epilog", "exit codes: see live-code --help")
        super().__init__(*args, **kwargs)


def _add_sample_dataset(sub: Subparsers) -> None:
    s = sub.add_parser("sample-dataset", help="write a small YMIR task directory (DIR/in, DIR/out) with known boxes")
    s.add_argument("dir", type=Path, help="directory to create; DIR/in and DIR/out are written")
    s.add_argument(
        "--task", choices=sorted(TASK_CHOICES), default="training", help="the task kind (default: %(default)s)"
    )
    format_options(
        s,
        default="ark",
        format_help="annotation format of the assets (default: %(default)s)",
        protocol_help="the YMIR protocol version of env.yaml (default: %(default)s)",
    )
    s.add_argument("--images", type=int, default=24, help="number of images (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed for the drawn images")
    s.add_argument("--force", action="store_true", help="replace DIR/in and DIR/out if they are not empty")
    s.set_defaults(func=_cmd_sample_dataset)


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


def _add_run(sub: Subparsers) -> None:
    r = sub.add_parser(
        "run", help="run the task in /in (or --in DIR) and write /out (or --out DIR): the image's default command"
    )
    in_out_options(r)
    sandbox_option(
        r, "run the job with the dirs at /in and /out through bubblewrap (default: auto, or $LIVE_CODE_SANDBOX)"
    )
    r.add_argument("--work", type=Path, default=None, help="where the run's working dir goes (default: the temp dir)")
    r.add_argument(
        "--keep-work", action="store_true", help="keep the run's working dir (source checkout, HOME) for debugging"
    )
    r.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from live_code.run import pipeline

    overrides = {"in_dir": args.in_dir, "out_dir": args.out_dir, "work_root": args.work, "keep_work": args.keep_work}
    if args.sandbox:
        overrides["sandbox"] = args.sandbox
    settings = pipeline.Settings.from_environ(**overrides)
    pipeline.run(settings)
    print(f"live-code: run succeeded; outputs are valid (provenance: {args.out_dir / pipeline.PROVENANCE_NAME})")
    return 0


def _add_check(sub: Subparsers) -> None:
    ch = sub.add_parser(
        "check", help="check a repo: manifest, entries, requirements, schema, and a smoke run per task kind"
    )
    ch.add_argument("repo", help="PATH_OR_URL[@PIN]; a local folder without a pin is checked as it is now")
    ch.add_argument("--static", action="store_true", help="only the static checks (no environment, no run)")
    ch.add_argument("--allow-branch", action="store_true", help="accept a branch or HEAD as the pin")
    ch.add_argument("--work", type=Path, help="keep the smoke runs' task dirs here (default: a temp dir, removed)")
    sandbox_option(ch, "bubblewrap for the smoke runs (default: auto, or $LIVE_CODE_SANDBOX)")
    ch.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="a hyper-parameter of every smoke run (read as YAML), e.g. a small model; repeatable",
    )
    json_option(ch)
    ch.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from live_code.commands import check

    report = check.check_repo(
        args.repo,
        static_only=args.static,
        allow_branch=args.allow_branch,
        work=args.work,
        sandbox=args.sandbox,
        overrides=parse_overrides(args.overrides),
    )
    if args.json:
        print_json(
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


def _add_replay(sub: Subparsers) -> None:
    rp = sub.add_parser(
        "replay", help="re-run a kept task dir (in/, out/) into WORKDIR/replay-<n>/out and diff the outputs"
    )
    rp.add_argument("workdir", type=Path, help="the kept task dir: in/, out/ (and task_config.yaml)")
    sandbox_option(rp, "bubblewrap for /in and /out (default: auto, or $LIVE_CODE_SANDBOX)")
    rp.add_argument("--keep-work", action="store_true", help="keep the replay's source checkout and HOME")
    rp.add_argument(
        "--resolve", action="store_true", help="resolve the requirements afresh, not install the recorded lock"
    )
    rp.set_defaults(func=_cmd_replay)


def _cmd_replay(args: argparse.Namespace) -> int:
    from live_code.commands import replay

    result = replay.replay(args.workdir, sandbox=args.sandbox, keep_work=args.keep_work, resolve=args.resolve)
    print(result.render())
    if result.error is not None:
        raise result.error
    return 0 if result.identical else 1


def _add_init(sub: Subparsers) -> None:
    it = sub.add_parser("init", help="a new git repo from a template, first commit made, ready to push")
    it.add_argument("dir", type=Path, nargs="?", help="the new repository's folder (must not exist or be empty)")
    it.add_argument(
        "--template", default="minimal", help="minimal, yolov5, mmdet, detectron2, ... (default: %(default)s)"
    )
    it.add_argument("--list", action="store_true", help="list the templates there are")
    it.set_defaults(func=_cmd_init)


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


def _add_report(sub: Subparsers) -> None:
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
    json_option(rr)
    rr.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from live_code.commands import report

    result = report.write_report(args.outs, dest=args.dest, in_dirs=args.in_dirs, images=args.images)
    if args.json:
        print_json({"html": str(result.html), "pictures": [str(p) for p in result.pngs], "notes": list(result.notes)})
        return 0
    for note in result.notes:  # the report is written all the same: warnings, exit 0
        print(f"live-code: warning: {note}", file=sys.stderr)
    print(f"report: {result.html} ({len(result.pngs)} pictures)")
    return 0


#: each command's parser, in the order of ``live-code --help``
_COMMANDS: dict[str, Callable[[Subparsers], None]] = {
    "sample-dataset": _add_sample_dataset,
    "run": _add_run,
    "validate": _module_parser("validate"),
    "cache": _module_parser("cache"),
    "local": _module_parser("local_cli"),
    "check": _add_check,
    "replay": _add_replay,
    "lock": _module_parser("lock_cli"),
    "init": _add_init,
    "prefetch": _module_parser("prefetch"),
    "report": _add_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with signals.ctrl_c_deferred():
        return _main(argv)


def _main(argv: list[str]) -> int:
    parser = _parser(_command_in(argv))
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
            print_json({"ok": False, "error": error_doc(e)})
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
            path = write_crash_log(argv)
            print(
                f"live-code: an unexpected error occurred (a bug in live-code). The traceback is in {path}; "
                "please attach it to a bug report.",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        raise
