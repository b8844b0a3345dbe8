"""``live-code cache ls`` and ``live-code cache gc``: what the cache of mirrors and environments
holds, and removing old or excess entries (``live_code.source.store`` keeps the entries)."""

from __future__ import annotations

import argparse
import time

from live_code.commands._cli import Subparsers, json_option, print_json
from live_code.errors import ConfigError
from live_code.source import store as store_mod


def add_parser(sub: Subparsers) -> None:
    c = sub.add_parser("cache", help="list or clean the cache of mirrors and environments")
    csub = c.add_subparsers(dest="cache_command", metavar="ACTION")
    csub.required = True
    ls = csub.add_parser("ls", help="list cached mirrors and environments")
    json_option(ls)
    ls.set_defaults(func=cmd_ls)
    gc = csub.add_parser("gc", help="remove old or excess entries (never one in use)")
    gc.add_argument("--max-size", type=parse_size, help="keep the cache under this size, e.g. 20G")
    gc.add_argument("--max-age", type=parse_age, help="remove entries unused for this long, e.g. 30d")
    gc.set_defaults(func=cmd_gc)


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1024`` -> bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        return int(float(num) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 500M, 2G)") from None


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "s")
    try:
        return float(num) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an age: {text!r} (use e.g. 30d, 12h)") from None


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def cmd_ls(args: argparse.Namespace) -> int:
    st = store_mod.Store()
    entries = st.entries()
    if args.json:
        print_json(
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
        print(f"  {e.kind:<8} {e.key[:16]:<16} {human(e.size):>10}  used {age_h:6.1f} h ago  {what}{state}")
    print(f"  total {human(sum(e.size for e in entries))} in {len(entries)} entries")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    if args.max_size is None and args.max_age is None:
        raise ConfigError("cache gc needs --max-size or --max-age", hint="e.g. live-code cache gc --max-age 30d")
    st = store_mod.Store()
    removed = st.gc(max_size=args.max_size, max_age=args.max_age)
    for e in removed:
        print(f"removed {e.kind}/{e.key} ({human(e.size)})")
    print(f"removed {len(removed)} entries, freed {human(sum(e.size for e in removed))}")
    from live_code.run import job  # the run layer: only this command needs it

    grace = job.SHIM_GRACE if args.max_age is None else min(args.max_age, job.SHIM_GRACE)
    shims = job.prune_shims(st.root / "sdk", older_than=grace)
    if shims:
        print(f"removed {len(shims)} SDK shims this live-code no longer uses (sdk/)")
    return 0
