"""Entry point of every task kind: training, or mining then infer, as env.yaml asks.

Failures the platform should show are reported in /out/monitor.txt with a YMIR return code and
the process exits 1; anything else is a crash with its traceback. Under torchrun (gpu_count > 1)
every process runs this file; only rank 0 writes progress and results.
"""

from __future__ import annotations

import logging
import os
import re
import sys

import dist
import offline
import torch

from live_code import sdk

logger = logging.getLogger("yolov5")

ORDER = (sdk.TaskKind.TRAINING, sdk.TaskKind.MINING, sdk.TaskKind.INFER)


def main() -> int:
    ranks = dist.from_environ()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s {'' if ranks.main else f'[rank {ranks.rank}] '}%(name)s %(levelname)s %(message)s",
    )
    env = sdk.read_env()
    config = sdk.read_config(env)
    kinds = [kind for kind in ORDER if kind in env.kinds]
    if sdk.TaskKind.TRAINING in kinds and ranks.world > 1 and not torch.cuda.is_available():
        # ultralytics trains across processes only on GPUs: one CPU process trains, the others leave
        if not ranks.main:
            logger.info("no GPU: rank %d leaves the training to rank 0", ranks.rank)
            return 0
        logger.warning(
            "%d processes were started but torch sees no GPU: training in one process on the CPU", ranks.world
        )
        ranks = dist.leave_launcher()
    work = offline.work_dir(env)
    offline.prepare(work, ranks.rank)  # before the first import of ultralytics (by the modules below)

    try:
        import infer
        import mine
        import train
        import weights
        from dataset import ImageFormatError
        from download import DownloadFailed
        from export import ExportFailed

        offline.guard(work)
    except ImportError as e:
        if ".so" not in str(e):
            raise
        # opencv-python (cv2, which ultralytics requires) links libGL and glib: slim images lack them
        msg = (
            f"the image lacks a system library: {e}; opencv-python (needed by ultralytics) wants libGL.so.1 "
            "and libglib-2.0.so.0: install libgl1 and libglib2.0-0 (Debian/Ubuntu) in the image"
        )
        return _fail(sdk.ReturnCode.CONTAINER_ERROR, msg, env)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    if ranks.main:
        logger.info("task %s: %s (protocol %s)", env.task_id, ", ".join(k.value for k in kinds), env.protocol_version)
    try:
        if sdk.TaskKind.TRAINING in kinds:
            train.run(env, config, ranks, work)
        else:
            dist.start_group(ranks, dist.device_for(config, ranks))
            try:
                if sdk.TaskKind.MINING in kinds:
                    mine.run(env, config, ranks)
                if sdk.TaskKind.INFER in kinds:
                    infer.run(env, config, ranks)
            finally:
                dist.stop_group()
    except weights.ModelNotFound as e:
        return _fail(sdk.ReturnCode.MODEL_NOT_FOUND, str(e), env)
    except ImageFormatError as e:
        return _fail(sdk.ReturnCode.UNKNOWN_IMAGE_FORMAT, str(e), env)
    except sdk.DatasetFormatError as e:
        return _fail(sdk.ReturnCode.DATASET_ERROR, str(e), env)
    except sdk.SdkError as e:  # a bad hyper-parameter or env.yaml
        return _fail(sdk.ReturnCode.CONFIG_ERROR, str(e), env)
    except dist.NoGpu as e:
        return _fail(sdk.ReturnCode.NO_GPU, str(e), env)
    except DownloadFailed as e:
        return _fail(sdk.ReturnCode.NETWORK_ERROR, f"{e} (pretrained_required is true)", env)
    except ExportFailed as e:
        return _fail(sdk.ReturnCode.CONFIG_ERROR, f"{e}; set export_onnx: false to skip the export", env)
    except torch.cuda.OutOfMemoryError as e:
        return _fail(
            sdk.ReturnCode.OUT_OF_MEMORY, f"CUDA out of memory ({e}); lower batch_size_per_gpu or img_size", env
        )
    except RuntimeError as e:
        if not re.search(r"\bnan\b", str(e), re.IGNORECASE):  # ultralytics: "NaN persisted for 3 epochs"
            raise
        return _fail(sdk.ReturnCode.NAN_IN_TRAINING, f"{e}; lower learning_rate", env)
    if ranks.main:
        logger.info("done")
    return 0


def _fail(code: sdk.ReturnCode, message: str, env: sdk.Env) -> int:
    logger.error("%s (%s)", message, code.name)
    sdk.write_error(code, message, env=env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
