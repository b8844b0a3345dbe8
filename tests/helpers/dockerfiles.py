"""The base images' Dockerfiles read as data (instructions, ENV, FROM, COPY, .dockerignore) and the
img-man files checked against the contract: for tests/test_base_images.py and the image builds of
tests/helpers/images.py."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import NamedTuple

import yaml

from live_code import contract

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO / "base_images"
COMMON = IMAGES_DIR / "common"
IMG_MAN = COMMON / "img-man"
IMAGES = ("torch", "mxnet")
DOCKERFILES = {name: IMAGES_DIR / name / "Dockerfile" for name in (*IMAGES, "prefetch")}
OBJECT_TYPES = {int(t) for t in contract.ObjectType}
#: the 2.x executor SDK's git bundle (tests/run.sh): the replay cannot reach GitHub, so it builds the
#: images' SDK wheelhouse from a clone of it (the build argument YMIR_EXC_SDK2_SOURCE)
SDK_BUNDLE = Path(
    os.environ.get("LIVE_CODE_SDK_BUNDLE") or REPO.parent / "shared" / "sources" / "ymir-executor-sdk.bundle"
)


class Instruction(NamedTuple):
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    found, buf = [], ""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") or (not text and not buf):
            continue
        if text.endswith("\\"):
            buf += text[:-1] + " "
            continue
        buf += text
        keyword, _, rest = buf.partition(" ")
        found.append(Instruction(keyword.upper(), rest.strip()))
        buf = ""
    return found


def assignments(args: str) -> dict[str, str]:
    out = {}
    for token in shlex.split(args):
        name, _, value = token.partition("=")
        out[name] = value
    return out


def env_of(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions(path):
        if ins.keyword == "ENV":
            env.update(assignments(ins.args))
    return env


def base_image(path: Path) -> str:
    """FROM's image with the ARG defaults before it substituted."""
    args: dict[str, str] = {}
    for ins in instructions(path):
        if ins.keyword == "ARG":
            args.update(assignments(ins.args))
        elif ins.keyword == "FROM":
            return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ins.args.split()[0])
    raise AssertionError(f"{path} has no FROM")


def copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY."""
    out = []
    for ins in instructions(path):
        if ins.keyword == "COPY":
            tokens = [t for t in shlex.split(ins.args) if not t.startswith("--")]
            out.append((tokens[:-1], tokens[-1]))
    return out


def dockerignore_allows(patterns: Sequence[str], rel: str) -> bool:
    """Whether ``rel`` goes into the build context (the last matching pattern decides; a pattern
    also matches everything under a directory it matches)."""
    parts = rel.split("/")
    allowed = True
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch(prefix, pattern) or (pattern.startswith("**/") and fnmatch(parts[depth - 1], pattern[3:])):
                allowed = negate
                break
    return allowed


def ignore_patterns(dockerfile: Path) -> list[str]:
    text = dockerfile.with_name("Dockerfile.dockerignore").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def img_man_problems(folder: Path) -> list[str]:
    """ymir-contract.md 1.1: each file a YAML mapping; templates flat; manifest keys typed."""
    problems = []
    for path in sorted(folder.iterdir()):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            problems.append(f"{path.name}: not YAML: {e}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: not a mapping")
            continue
        if path.name.endswith("-template.yaml"):
            problems += [f"{path.name}: {k} is nested" for k, v in data.items() if isinstance(v, dict)]
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    object_type = manifest.get("object_type")
    types = object_type if isinstance(object_type, list) else [object_type]
    if not types or any(isinstance(t, bool) or t not in OBJECT_TYPES for t in types):
        problems.append(f"manifest.yaml: object_type {object_type!r} is not one of {sorted(OBJECT_TYPES)}")
    for key in ("enable_livecode", "is_official"):
        if key in manifest and not isinstance(manifest[key], bool):
            problems.append(f"manifest.yaml: {key} must be a boolean")
    if manifest.get("enable_livecode") is not True:
        problems.append("manifest.yaml: enable_livecode must be true (YMIR >= 2.1 shows the git fields then)")
    if isinstance(object_type, int) and (folder / "training-template.yaml").is_file() is False:
        problems.append("no training-template.yaml")
    return problems


def dockerfile_cmd(name: str) -> list[str]:
    (cmd,) = [json.loads(ins.args) for ins in instructions(DOCKERFILES[name]) if ins.keyword == "CMD"]
    return cmd
