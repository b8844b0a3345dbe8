"""What user code imports inside a live-code job: the task, its data, progress and results.

A job reads its task and writes its outputs only through these names::

    from live_code import sdk

    env = sdk.read_env()                      # env.yaml: task kinds and paths
    config = sdk.read_config()                # merged hyper-parameters (a dict)
    epochs = sdk.get_int(config, "epochs", 10)
    for item in sdk.iter_items(sdk.Split.TRAINING):
        ...                                   # item.image_path, item.boxes
    sdk.write_progress(0.5)
    sdk.write_model_stage("epoch_10", ["epoch_10.pt"], 0.61)
    sdk.ScalarWriter(env.output.tensorboard_dir).add_scalar("mAP", 0.61, 10)
    score = sdk.entropy_score(confidences)    # mining: also random, aldd and cald scores
    sdk.write_coco(sdk.Split.TRAINING, "/out/work/train.json")  # a split as a COCO detection file

Where the files are: env.yaml is ``$LIVE_CODE_ENV_FILE`` (set by the harness) or ``/in/env.yaml``;
the hyper-parameters are ``$LIVE_CODE_CONFIG_FILE`` (the harness's merged file) or env.yaml's
``input.config_file``. Every writer takes ``env=`` to write for another task than the current one.
Errors are :class:`SdkError` subclasses, themselves ``ValueError``.

The SDK imports only the standard library, PyYAML and ``live_code.contract``, so it runs in a
job's environment without the harness's dependencies.
"""
from __future__ import annotations

from live_code.contract import ReturnCode
from live_code.contract import TaskKind
from live_code.sdk._coco import CocoCounts
from live_code.sdk._coco import coco_box
from live_code.sdk._coco import coco_categories
from live_code.sdk._coco import coco_dataset
from live_code.sdk._coco import write_coco
from live_code.sdk._config import config_file_path
from live_code.sdk._config import get_bool
from live_code.sdk._config import get_float
from live_code.sdk._config import get_int
from live_code.sdk._config import get_list
from live_code.sdk._config import read_config
from live_code.sdk._dataset import Box
from live_code.sdk._dataset import DatasetItem
from live_code.sdk._dataset import Split
from live_code.sdk._dataset import count_items
from live_code.sdk._dataset import index_file
from live_code.sdk._dataset import iter_items
from live_code.sdk._env import Env
from live_code.sdk._env import EnvInput
from live_code.sdk._env import EnvOutput
from live_code.sdk._env import env_file_path
from live_code.sdk._env import parse_env
from live_code.sdk._env import read_env
from live_code.sdk._errors import ConfigValueError
from live_code.sdk._errors import DatasetFormatError
from live_code.sdk._errors import EnvFileError
from live_code.sdk._errors import ImageFormatError
from live_code.sdk._errors import ModelNotFoundError
from live_code.sdk._errors import ResultError
from live_code.sdk._errors import SdkError
from live_code.sdk._imagesize import image_size
from live_code.sdk._metrics import average_precision
from live_code.sdk._metrics import mean_average_precision
from live_code.sdk._mining import CALD_AUGMENTATIONS
from live_code.sdk._mining import CALD_BETA
from live_code.sdk._mining import CALD_RESIZE_SCALE
from live_code.sdk._mining import CALD_ROTATE_DEGREES
from live_code.sdk._mining import ENTROPY_EMPTY_SCORE
from live_code.sdk._mining import aldd_score
from live_code.sdk._mining import augment_box
from live_code.sdk._mining import box_iou
from live_code.sdk._mining import cald_score
from live_code.sdk._mining import class_weights_from_config
from live_code.sdk._mining import entropy_score
from live_code.sdk._mining import random_score
from live_code.sdk._mining import unaugment_box
from live_code.sdk._models import ModelFiles
from live_code.sdk._models import find_model_files
from live_code.sdk._models import model_class_names
from live_code.sdk._models import model_paths
from live_code.sdk._models import pick_checkpoint
from live_code.sdk._monitor import write_error
from live_code.sdk._monitor import write_progress
from live_code.sdk._results import Detection
from live_code.sdk._results import write_infer_result
from live_code.sdk._results import write_mining_result
from live_code.sdk._tensorboard import ScalarWriter
from live_code.sdk._training import write_model_stage

__all__ = [
    "Box",
    "CALD_AUGMENTATIONS",
    "CALD_BETA",
    "CALD_RESIZE_SCALE",
    "CALD_ROTATE_DEGREES",
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
    "ImageFormatError",
    "ModelFiles",
    "ModelNotFoundError",
    "ResultError",
    "ReturnCode",
    "ScalarWriter",
    "SdkError",
    "Split",
    "TaskKind",
    "aldd_score",
    "augment_box",
    "average_precision",
    "box_iou",
    "cald_score",
    "class_weights_from_config",
    "coco_box",
    "coco_categories",
    "coco_dataset",
    "config_file_path",
    "count_items",
    "entropy_score",
    "env_file_path",
    "find_model_files",
    "get_bool",
    "get_float",
    "get_int",
    "get_list",
    "image_size",
    "index_file",
    "iter_items",
    "mean_average_precision",
    "model_class_names",
    "model_paths",
    "parse_env",
    "pick_checkpoint",
    "random_score",
    "read_config",
    "read_env",
    "unaugment_box",
    "write_coco",
    "write_error",
    "write_infer_result",
    "write_mining_result",
    "write_model_stage",
    "write_progress",
]
