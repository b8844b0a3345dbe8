"""``live-code lock``'s command line (see :mod:`live_code.commands.lock`, imported only when the
command runs, so that parsing any other command does not load the env builder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from live_code import util
from live_code.contract import LOCK_NAME


def add_parser(sub: Any) -> None:
    """The ``lock`` sub-command of the CLI."""
    lk = sub.add_parser("lock", help="resolve a repo's requirements over the image's base into a pylock.toml to commit")
    lk.add_argument("repo", help="PATH_OR_URL[@PIN]; a local folder without a pin is locked as it is now")
    lk.add_argument("--as-of", metavar="commit|DATE", help="resolve as of the commit's date or an ISO date")
    lk.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write here: *.toml gets a pylock.toml (PEP 751), any other name pinned requirements with "
        "hashes (default: a pylock.toml on stdout); with --check, the committed lock's path in the repo",
    )
    lk.add_argument("--check", action="store_true", help="exit 1 when the repo's committed lock is stale")
    lk.add_argument("--allow-branch", action="store_true", help="accept a branch or HEAD as the pin")
    lk.add_argument("--index-url", help="as the task's pip_index_url")
    lk.add_argument("--extra-index-url", action="append", default=[], help="as pip_extra_index_urls")
    lk.add_argument("--find-links", action="append", default=[], help="as pip_find_links (a wheelhouse)")
    lk.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from live_code.commands.lock import check_lock, lock_repo, pinned_requirements
    from live_code.envs import builder as envs

    index = envs.IndexSettings(
        index_url=args.index_url, extra_index_urls=tuple(args.extra_index_url), find_links=tuple(args.find_links)
    )
    if args.check:
        stale = check_lock(args.repo, args.output or Path(LOCK_NAME), index=index, allow_branch=args.allow_branch)
        print(stale or "the committed lock is up to date")
        return 1 if stale else 0
    result = lock_repo(args.repo, as_of=args.as_of, index=index, allow_branch=args.allow_branch)
    text = result.text if args.output is None or args.output.suffix == ".toml" else pinned_requirements(result.lock)
    if args.output is None:
        sys.stdout.write(text)
    else:
        util.atomic_write(args.output, text)
    where = "stdout" if args.output is None else str(args.output)
    when = f", as of {result.as_of}" if result.as_of else ""
    print(f"locked {len(result.lock.packages)} packages at commit {result.commit[:12]}{when}: {where}", file=sys.stderr)
    return 0
