"""The task functions ``start.py`` hands to ``sdk.main``, and what has to happen before them.

Under torchrun (gpu_count > 1) every process runs start.py; only rank 0 writes progress and
results. ultralytics is imported only after :func:`prepare` has pointed its settings and caches
under the job's work dir (``offline.py``), so the task modules are imported lazily here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import dist
import offline
import torch

from live_code import sdk

logger = logging.getLogger("yolov5")


class Job:
    """This process's place among the job's processes and the work dir; one method per task kind."""

    def __init__(self, ranks: dist.Ranks, work: str) -> None:
        self.ranks, self.work = ranks, work
        self._grouped = self._guarded = False

    def train(self, env: sdk.Env, config: dict[str, Any]) -> None:
        with self._modules() as modules:
            modules["train"].run(env, config, self.ranks, self.work)

    def mine(self, env: sdk.Env, config: dict[str, Any]) -> None:
        with self._modules() as modules:
            self._group(config)
            modules["mine"].run(env, config, self.ranks)

    def infer(self, env: sdk.Env, config: dict[str, Any]) -> None:
        with self._modules() as modules:
            self._group(config)
            modules["infer"].run(env, config, self.ranks)

    @contextlib.contextmanager
    def _modules(self) -> Iterator[dict[str, Any]]:
        with _modules() as modules:
            if not self._guarded:  # once ultralytics is imported
                offline.guard(self.work)
                self._guarded = True
            yield modules

    def _group(self, config: dict[str, Any]) -> None:
        """Mining and infer of a multi-process run share one process group."""
        if not self._grouped:
            dist.start_group(self.ranks, dist.device_for(config, self.ranks))
            self._grouped = True

    def close(self) -> None:
        dist.stop_group()


def prepare() -> Job | None:
    """Logging, ranks, the offline settings and threads; None when this process has nothing to do."""
    ranks = dist.from_environ()
    prefix = "" if ranks.main else f"[rank {ranks.rank}] "
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format=f"%(asctime)s {prefix}%(name)s %(levelname)s %(message)s"
    )
    env = sdk.read_env()
    if sdk.TaskKind.TRAINING in env.kinds and ranks.world > 1 and not torch.cuda.is_available():
        # ultralytics trains across processes only on GPUs: one CPU process trains, the others leave
        if not ranks.main:
            logger.info("no GPU: rank %d leaves the training to rank 0", ranks.rank)
            return None
        logger.warning(
            "%d processes were started but torch sees no GPU: training in one process on the CPU", ranks.world
        )
        ranks = dist.leave_launcher()
    work = offline.work_dir(env)
    offline.prepare(work, ranks.rank)  # before the first import of ultralytics (by the task modules)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    return Job(ranks, work)


@contextlib.contextmanager
def _modules() -> Iterator[dict[str, Any]]:
    """The task modules (importing ultralytics), with the failures whose fix the reason should name."""
    try:
        import download
        import export
        import infer
        import mine
        import train
    except ImportError as e:
        if ".so" not in str(e):
            raise
        # opencv-python (cv2, which ultralytics requires) links libGL and glib: slim images lack them
        msg = (
            f"the image lacks a system library: {e}; opencv-python (needed by ultralytics) wants libGL.so.1 "
            "and libglib-2.0.so.0: install libgl1 and libglib2.0-0 (Debian/Ubuntu) in the image"
        )
        raise sdk.TaskError(msg, sdk.ReturnCode.CONTAINER_ERROR) from e
    try:
        yield {"train": train, "mine": mine, "infer": infer}
    except download.DownloadFailed as e:
        raise sdk.TaskError(f"{e} (pretrained_required is true)", sdk.ReturnCode.NETWORK_ERROR) from e
    except export.ExportFailed as e:
        msg = f"{e}; set export_onnx: false to skip the export"
        raise sdk.TaskError(msg, sdk.ReturnCode.CONFIG_ERROR) from e
    except torch.cuda.OutOfMemoryError as e:
        msg = f"CUDA out of memory ({e}); lower batch_size_per_gpu or img_size"
        raise sdk.TaskError(msg, sdk.ReturnCode.OUT_OF_MEMORY) from e
    except RuntimeError as e:
        if not re.search(r"\bnan\b", str(e), re.IGNORECASE):  # ultralytics: "NaN persisted for 3 epochs"
            raise
        raise sdk.TaskError(f"{e}; lower learning_rate", sdk.ReturnCode.NAN_IN_TRAINING) from e
