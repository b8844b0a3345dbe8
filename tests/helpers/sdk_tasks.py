"""A task's folders as YMIR lays them out, for the SDK and output-gate tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from live_code import contract
from live_code.contract import TaskKind

CLASSES = ["cat", "dog", "person"]
TASK_ID = "t0000001000000000000000000001"


def make_task(root: Path, protocol: str, kinds: Iterable[TaskKind], config: dict[str, object] | None = None) -> Path:
    """A task dir ``root/in`` + ``root/out`` as YMIR lays it out; returns the env.yaml path."""
    in_dir, out_dir = root / "in", root / "out"
    (in_dir / "assets").mkdir(parents=True, exist_ok=True)
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    env = contract.env_yaml(
        protocol=protocol,
        task_id=TASK_ID,
        kinds=frozenset(kinds),
        in_dir=str(in_dir),
        out_dir=str(out_dir),
    )
    (in_dir / "env.yaml").write_text(yaml.safe_dump(env))
    (in_dir / "config.yaml").write_text(yaml.safe_dump(config if config is not None else {"class_names": CLASSES}))
    return in_dir / "env.yaml"
