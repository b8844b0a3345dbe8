"""Processes and devices: one process, or one per GPU under torchrun (live-code.yaml ``launcher``).

live-code starts ``python -m torch.distributed.run --nproc_per_node=<gpu_count> start.py`` when
``gpu_count > 1``; torchrun tells each process its place in ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``. Training hands that to ultralytics (which joins the process group itself);
mining and infer split the candidates by rank and gather the results on rank 0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.distributed as torch_dist

from live_code import sdk

logger = logging.getLogger(__name__)


class NoGpu(Exception):
    """The platform gave GPUs (``gpu_id``) that torch cannot use."""

    return_code = sdk.ReturnCode.NO_GPU


class Ranks(NamedTuple):
    """This process's place among the job's processes."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """The process that writes results, progress and stages."""
        return self.rank == 0


def from_environ(environ: Mapping[str, str] | None = None) -> Ranks:
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE") or 1)
    if world <= 1:
        return Ranks()
    return Ranks(int(env.get("RANK") or 0), int(env.get("LOCAL_RANK") or 0), world)


def leave_launcher() -> Ranks:
    """Make this process a lone one (ultralytics reads ``WORLD_SIZE``/``RANK`` at import)."""
    os.environ["WORLD_SIZE"] = "1"
    for name in ("RANK", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE"):
        os.environ.pop(name, None)
    return Ranks()


def check_gpus(config: Mapping[str, Any]) -> list[str]:
    """``gpu_ids`` after checking that torch can use that many CUDA devices."""
    ids = sdk.gpu_ids(config)
    if ids:
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < len(ids):
            raise NoGpu(
                f"gpu_id {','.join(ids)!r} asks for {len(ids)} GPU(s) but torch {torch.__version__} sees "
                f"{have} CUDA device(s); run on a GPU node or leave gpu_id empty for the CPU"
            )
    return ids


def device_for(config: Mapping[str, Any], ranks: Ranks) -> torch.device:
    """Mining and infer: this rank's GPU, or the CPU when the task has none."""
    ids = check_gpus(config)
    if not ids:
        return torch.device("cpu")
    return torch.device("cuda", ranks.local_rank if ranks.world > 1 else int(ids[0]))


def start_group(ranks: Ranks, device: torch.device) -> None:
    """Join the process group of a multi-process mining/infer run (NCCL on GPUs, gloo on CPUs)."""
    if ranks.world > 1 and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        logger.info("rank %d of %d on %s", ranks.rank, ranks.world, device)


def stop_group() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def candidates(ranks: Ranks, env: sdk.Env) -> tuple[list[str], list[str], str]:
    """Every candidate image, this rank's share of them, and ``' on N processes'`` for the log
    (``''`` for one process)."""
    paths = sdk.candidate_paths(env)
    return paths, paths[ranks.rank :: ranks.world], f" on {ranks.world} processes" if ranks.world > 1 else ""


def gather(ranks: Ranks, items: list[Any]) -> list[Any]:
    """Every rank's ``items`` concatenated in rank order, on every rank (one process: ``items``)."""
    if ranks.world <= 1:
        return items
    parts: list[Any] = [None] * ranks.world
    torch_dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]
