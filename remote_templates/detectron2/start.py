"""Entry point of every task kind of the detectron2 template: training, then mining, then infer, as
env.yaml asks. Failures the platform should show go to /out/monitor.txt with a YMIR return code
and the process exits 1; anything else is a crash with its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import modelfiles

from live_code import sdk

logger = logging.getLogger("detectron2-template")

ORDER = (sdk.TaskKind.TRAINING, sdk.TaskKind.MINING, sdk.TaskKind.INFER)


def _runner(kind: sdk.TaskKind):  # type: ignore[no-untyped-def]
    if kind is sdk.TaskKind.TRAINING:
        import train

        return train.run
    if kind is sdk.TaskKind.MINING:
        import mine

        return mine.run
    import infer

    return infer.run


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    env = sdk.read_env()
    config = sdk.read_config(env)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(4, os.cpu_count() or 1))))
    kinds = [kind for kind in ORDER if kind in env.kinds]
    logger.info("task %s: %s (protocol %s)", env.task_id, ", ".join(k.value for k in kinds), env.protocol_version)
    try:
        for kind in kinds:
            _runner(kind)(env, config)
    except modelfiles.ModelNotFound as e:
        return _fail(sdk.ReturnCode.MODEL_NOT_FOUND, str(e), env)
    except sdk.ImageFormatError as e:
        return _fail(sdk.ReturnCode.UNKNOWN_IMAGE_FORMAT, str(e), env)
    except sdk.DatasetFormatError as e:
        return _fail(sdk.ReturnCode.DATASET_ERROR, str(e), env)
    except sdk.SdkError as e:  # a bad hyper-parameter or env.yaml
        return _fail(sdk.ReturnCode.CONFIG_ERROR, str(e), env)
    logger.info("done")
    return 0


def _fail(code: sdk.ReturnCode, message: str, env: sdk.Env) -> int:
    logger.error("%s (%s)", message, code.name)
    sdk.write_error(code, message, env=env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
