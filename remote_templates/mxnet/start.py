"""Entry point of every task kind: training, then mining, then infer, as env.yaml asks.

Failures the platform should show are reported in /out/monitor.txt with a YMIR return code and
the process exits 1; anything else is a crash with its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

# MXNet reads its thread settings when it is imported: a few threads, unless the operator set them
_THREADS = str(max(1, min(4, os.cpu_count() or 1)))
os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", _THREADS)

import infer  # noqa: E402
import mine  # noqa: E402
import mxnet as mx  # noqa: E402
import train  # noqa: E402
import weights  # noqa: E402

from live_code import sdk  # noqa: E402

logger = logging.getLogger("mxnet-template")

RUNNERS = {sdk.TaskKind.TRAINING: train.run, sdk.TaskKind.MINING: mine.run, sdk.TaskKind.INFER: infer.run}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    env = sdk.read_env()
    config = sdk.read_config(env)
    kinds = [kind for kind in RUNNERS if kind in env.kinds]
    logger.info(
        "task %s: %s (protocol %s), MXNet %s",
        env.task_id,
        ", ".join(k.value for k in kinds),
        env.protocol_version,
        mx.__version__,
    )
    try:
        for kind in kinds:
            RUNNERS[kind](env, config)
    except weights.ModelNotFound as e:
        return _fail(sdk.ReturnCode.MODEL_NOT_FOUND, str(e), env)
    except sdk.DatasetFormatError as e:
        return _fail(sdk.ReturnCode.DATASET_ERROR, str(e), env)
    except sdk.SdkError as e:  # a bad hyper-parameter or env.yaml
        return _fail(sdk.ReturnCode.CONFIG_ERROR, str(e), env)
    except FloatingPointError as e:
        return _fail(sdk.ReturnCode.NAN_IN_TRAINING, str(e), env)
    logger.info("done")
    return 0


def _fail(code: sdk.ReturnCode, message: str, env: sdk.Env) -> int:
    logger.error("%s (%s)", message, code.name)
    sdk.write_error(code, message, env=env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
