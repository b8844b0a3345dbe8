"""What user code imports inside a live-code job: the task, its data, progress and results.

A repository's ``start.py`` hands its task functions to :func:`main`, which reads env.yaml, runs
the kinds it asks for and reports failures with YMIR's return codes::

    from live_code import sdk
    import infer, mine, train

    if __name__ == "__main__":
        sdk.main(train=train.run, mine=mine.run, infer=infer.run)   # each gets (env, config)

Inside them the task is read and the outputs written only through these names::

    env = sdk.read_env()                      # env.yaml: task kinds and paths
    config = sdk.read_config()                # merged hyper-parameters (a dict)
    epochs = sdk.get_int(config, "epochs", 10)
    for item in sdk.iter_items(sdk.Split.TRAINING):
        ...                                   # item.image_path, item.boxes
    sdk.write_progress(0.5)
    sdk.write_model_stage("epoch_10", ["epoch_10.pt"], 0.61)
    sdk.ScalarWriter(env.output.tensorboard_dir).add_scalar("mAP", 0.61, 10)
    params = sdk.training_params(config, epochs=30, batch_size=8, learning_rate=0.005, img_size=64)
    train = sdk.load_samples(sdk.Split.TRAINING, 64, names, read, to_boxes)  # read: the framework's
    log = sdk.TrainingLog(params)             # then log.loaded(...), log.end_epoch(...) per epoch
    score = sdk.entropy_score(confidences)    # mining: also random, aldd and cald scores
    sdk.mine_images("cald", MyMiner())        # an ImageMiner: read, boxes, the CALD image ops...
    sdk.score_candidates(lambda path, i: score_of(path))       # result.tsv, with progress
    sdk.detect_candidates(lambda path: detections_of(path))    # infer-result.json, with progress
    files = sdk.find_model_files(config, "model_params_path", weights_suffix=".pt")
    sdk.write_coco(sdk.Split.TRAINING, "/out/work/train.json")  # a split as a COCO detection file

Where the files are: env.yaml is ``$LIVE_CODE_ENV_FILE`` (set by the harness) or ``/in/env.yaml``;
the hyper-parameters are ``$LIVE_CODE_CONFIG_FILE`` (the harness's merged file) or env.yaml's
``input.config_file``. Every writer takes ``env=`` to write for another task than the current one.
Errors are :class:`SdkError` subclasses, themselves ``ValueError``.

The SDK imports only the standard library, PyYAML and ``live_code.contract``, so it runs in a
job's environment without the harness's dependencies.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use (below)
    from live_code.contract import ReturnCode, TaskKind
    from live_code.sdk._coco import CocoCounts, coco_dataset, write_coco
    from live_code.sdk._config import config_file_path, get_bool, get_float, get_int, get_list, read_config
    from live_code.sdk._dataset import DatasetItem, Split, count_items, index_file, iter_items
    from live_code.sdk._env import Env, EnvInput, EnvOutput, env_file_path, parse_env, read_env
    from live_code.sdk._errors import (
        ConfigValueError,
        DatasetFormatError,
        EnvFileError,
        ImageFormatError,
        ModelNotFoundError,
        ResultError,
        SdkError,
        TaskError,
    )
    from live_code.sdk._fit import (
        Sample,
        TrainingLog,
        TrainingParams,
        flipped_rows,
        input_size,
        load_samples,
        training_params,
    )
    from live_code.sdk._main import main, one_line_reason, return_code_for
    from live_code.sdk._metrics import average_precision, mean_average_precision
    from live_code.sdk._miner import (
        CALD_CUTOUT_SQUARES,
        CaldOps,
        GridMiner,
        ImageMiner,
        cald_augment,
        cald_cutout,
        cald_cutout_side,
        cald_image_score,
        cald_resized,
        image_score,
        mine_images,
    )
    from live_code.sdk._mining import (
        CALD_AUGMENTATIONS,
        CALD_BETA,
        CALD_RESIZE_SCALE,
        CALD_ROTATE_DEGREES,
        ENTROPY_EMPTY_SCORE,
        aldd_score,
        augment_box,
        box_iou,
        cald_score,
        class_weights_from_config,
        entropy_score,
        random_score,
        unaugment_box,
    )
    from live_code.sdk._models import (
        ModelFiles,
        find_model_files,
        model_class_names,
        model_paths,
        pick_checkpoint,
        stage_dir,
    )
    from live_code.sdk._monitor import write_error, write_progress
    from live_code.sdk._results import Detection, write_infer_result, write_mining_result
    from live_code.sdk._tasks import (
        cald_from_predictions,
        candidate_paths,
        clip_detections,
        detect_candidates,
        gpu_ids,
        image_size_with,
        mining_algorithm,
        require_images,
        scaled_boxes,
        score_candidates,
        training_class_names,
    )
    from live_code.sdk._tensorboard import ScalarWriter
    from live_code.sdk._training import write_model_stage
    from live_code.sdk.formats import Box, coco_box, coco_categories, image_size

#: the module of each public name: a job imports only the parts of the SDK it uses (PEP 562's module
#: ``__getattr__``), not all of them with their standard-library imports (about 60 ms for the whole
#: SDK, a third of that for a job that reads its task and writes a result)
_WHERE = {
    "live_code.contract": "ReturnCode TaskKind",
    "live_code.sdk._coco": "CocoCounts coco_dataset write_coco",
    "live_code.sdk._config": "config_file_path get_bool get_float get_int get_list read_config",
    "live_code.sdk._dataset": "DatasetItem Split count_items index_file iter_items",
    "live_code.sdk._env": "Env EnvInput EnvOutput env_file_path parse_env read_env",
    "live_code.sdk._errors": (
        "ConfigValueError DatasetFormatError EnvFileError ImageFormatError ModelNotFoundError ResultError "
        "SdkError TaskError"
    ),
    "live_code.sdk._fit": "Sample TrainingLog TrainingParams flipped_rows input_size load_samples training_params",
    "live_code.sdk._main": "main one_line_reason return_code_for",
    "live_code.sdk._metrics": "average_precision mean_average_precision",
    "live_code.sdk._miner": (
        "CALD_CUTOUT_SQUARES CaldOps GridMiner ImageMiner cald_augment cald_cutout cald_cutout_side "
        "cald_image_score cald_resized image_score mine_images"
    ),
    "live_code.sdk._mining": (
        "CALD_AUGMENTATIONS CALD_BETA CALD_RESIZE_SCALE CALD_ROTATE_DEGREES ENTROPY_EMPTY_SCORE aldd_score "
        "augment_box box_iou cald_score class_weights_from_config entropy_score random_score unaugment_box"
    ),
    "live_code.sdk._models": "ModelFiles find_model_files model_class_names model_paths pick_checkpoint stage_dir",
    "live_code.sdk._monitor": "write_error write_progress",
    "live_code.sdk._results": "Detection write_infer_result write_mining_result",
    "live_code.sdk._tasks": (
        "cald_from_predictions candidate_paths clip_detections detect_candidates gpu_ids image_size_with "
        "mining_algorithm require_images scaled_boxes score_candidates training_class_names"
    ),
    "live_code.sdk._tensorboard": "ScalarWriter",
    "live_code.sdk._training": "write_model_stage",
    "live_code.sdk.formats": "Box coco_box coco_categories image_size",
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names.split()}


def __getattr__(name: str) -> _typing.Any:
    module = _MODULE_OF.get(name)
    if module is None:
        if not name.startswith("__"):  # a submodule (sdk.formats), an attribute as when all were imported
            try:
                return _importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "Box",
    "CALD_AUGMENTATIONS",
    "CALD_BETA",
    "CALD_CUTOUT_SQUARES",
    "CALD_RESIZE_SCALE",
    "CALD_ROTATE_DEGREES",
    "CaldOps",
    "CocoCounts",
    "ConfigValueError",
    "DatasetFormatError",
    "DatasetItem",
    "Detection",
    "ENTROPY_EMPTY_SCORE",
    "Env",
    "EnvFileError",
    "EnvInput",
    "EnvOutput",
    "GridMiner",
    "ImageFormatError",
    "ImageMiner",
    "ModelFiles",
    "ModelNotFoundError",
    "ResultError",
    "ReturnCode",
    "Sample",
    "ScalarWriter",
    "SdkError",
    "Split",
    "TaskError",
    "TaskKind",
    "TrainingLog",
    "TrainingParams",
    "aldd_score",
    "augment_box",
    "average_precision",
    "box_iou",
    "cald_augment",
    "cald_cutout",
    "cald_cutout_side",
    "cald_from_predictions",
    "cald_image_score",
    "cald_resized",
    "cald_score",
    "candidate_paths",
    "class_weights_from_config",
    "clip_detections",
    "coco_box",
    "coco_categories",
    "coco_dataset",
    "config_file_path",
    "count_items",
    "detect_candidates",
    "entropy_score",
    "env_file_path",
    "find_model_files",
    "flipped_rows",
    "get_bool",
    "get_float",
    "get_int",
    "get_list",
    "gpu_ids",
    "image_score",
    "image_size",
    "image_size_with",
    "index_file",
    "input_size",
    "iter_items",
    "load_samples",
    "main",
    "mean_average_precision",
    "mine_images",
    "mining_algorithm",
    "model_class_names",
    "model_paths",
    "one_line_reason",
    "parse_env",
    "pick_checkpoint",
    "random_score",
    "read_config",
    "read_env",
    "require_images",
    "return_code_for",
    "scaled_boxes",
    "score_candidates",
    "stage_dir",
    "training_class_names",
    "training_params",
    "unaugment_box",
    "write_coco",
    "write_error",
    "write_infer_result",
    "write_mining_result",
    "write_model_stage",
    "write_progress",
]
