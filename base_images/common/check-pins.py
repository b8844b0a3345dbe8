"""Fail unless every distribution this interpreter sees is pinned, at its version, in the files given.

    python check-pins.py PINS.txt [PINS.txt ...]

A pin is ``name==version``, optionally ``; python_version <op> "X.Y"`` (the only marker the
image's pin files use). Pins for another Python are skipped. Standard library only: it runs with
the image's framework interpreter before anything else is installed there.
"""

from __future__ import annotations

import operator
import re
import sys
from importlib import metadata

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")
_MARKER = re.compile(r"^python_version\s*(>=|<=|==|!=|>|<)\s*[\"'](\d+)\.(\d+)[\"']$")
#: venvs made by Debian/Ubuntu's python (Ubuntu 20.04: the mxnet image) carry this placeholder
_ALWAYS_IGNORED = {"pkg-resources"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def applies(marker: str | None, where: str) -> bool:
    if not marker:
        return True
    m = _MARKER.match(marker.strip())
    if not m:
        raise SystemExit(f"{where}: only python_version markers are understood here, not {marker!r}")
    return _OPS[m.group(1)](sys.version_info[:2], (int(m.group(2)), int(m.group(3))))


def read_pins(paths: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                where = f"{path}:{number}"
                m = _PIN.match(line)
                if not m:
                    raise SystemExit(f"{where}: not an exact pin (name==version): {line!r}")
                if applies(m.group(3), where):
                    pins[canonical(m.group(1))] = m.group(2)
    return pins


def problems(pins: dict[str, str], ignore: set[str]) -> list[str]:
    found = []
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"] or "")
        if not name or name in ignore:
            continue
        if name not in pins:
            found.append(f"{name}=={dist.version} is installed but not pinned")
        elif pins[name] != dist.version:
            found.append(f"{name}=={dist.version} is installed but pinned to {pins[name]}")
    return sorted(set(found))


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--ignore=")]
    ignore = _ALWAYS_IGNORED | {
        canonical(n) for a in argv if a.startswith("--ignore=") for n in a.split("=", 1)[1].split(",") if n
    }
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(read_pins(args), ignore)
    for line in found:
        print(f"check-pins: {line}", file=sys.stderr)
    if found:
        print(f"check-pins: {sys.executable}: add exact pins for the above to {', '.join(args)}", file=sys.stderr)
        return 1
    print(f"check-pins: {sys.executable}: every distribution is pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
