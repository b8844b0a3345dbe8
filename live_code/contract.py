"""The YMIR executor contract (/in -> /out) as data.

Everything here is a fact of the platform, taken from ``shared/docs/ymir-contract.md`` (which cites
IndustryEssentials/ymir ``dev_docs/ymir-cmd-container.md``, ``mir/tools/env_config.py``,
``mir/tools/percent_log_util.py`` and the ``ymir_exc`` SDK). The SDK imports this module, so it
must import nothing but the standard library.

Protocol versions, as written in ``env.yaml: protocol_version``:

=========  ===============  =====================================================
protocol   YMIR releases    what changes for an executor
=========  ===============  =====================================================
0.0.1      0.x - 1.1.0      key absent; result.yaml is ``{model, map}``; infer
                            boxes under ``annotations``; no ``rotate_angle``
1.0.0      1.2.0 - 1.3.x    result.yaml has ``model_stages``; infer ``boxes``
1.1.0      2.0.0 - 2.5.0    adds ``manifest_file`` and ``executor_log_file``
=========  ===============  =====================================================
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from typing import NamedTuple

# -- protocol versions ---------------------------------------------------------------------------

PROTOCOL_0_0_1 = "0.0.1"  # YMIR 1.1 (env.yaml has no protocol_version key)
PROTOCOL_1_0_0 = "1.0.0"  # YMIR 1.2 / 1.3
PROTOCOL_1_1_0 = "1.1.0"  # YMIR 2.x (mir/version.py TMI_PROTOCOL_VERSION)
PROTOCOL_VERSIONS = (PROTOCOL_0_0_1, PROTOCOL_1_0_0, PROTOCOL_1_1_0)
DEFAULT_PROTOCOL = PROTOCOL_0_0_1  # what the SDKs assume when the key is absent


def protocol_tuple(protocol: str) -> tuple[int, ...]:
    """``'1.1.0'`` -> ``(1, 1, 0)``; raises ValueError for anything that is not dotted digits."""
    parts = protocol.split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"not a protocol version: {protocol!r}")
    return tuple(int(p) for p in parts)


def uses_model_stages(protocol: str) -> bool:
    """result.yaml has ``model_stages``/``best_stage_name`` (>= 1.0.0), else legacy ``model``/``map``."""
    return protocol_tuple(protocol) >= (1, 0, 0)


def allows_stage_dirs(protocol: str) -> bool:
    """Model files may sit in ``/out/models/<stage_name>/`` (>= 1.1.0), else only flat in ``/out/models``.

    The protocol table of ymir ``dev_docs/ymir-cmd-container.md`` moves stage files into
    per-stage sub-directories with 1.1.0 (YMIR 2.0); the packer then looks in the stage dir first,
    then in ``/out/models``, so flat files work in every version.
    """
    return protocol_tuple(protocol) >= (1, 1, 0)


def infer_list_key(protocol: str) -> str:
    """The key of an image's box list in infer-result.json.

    The SDK switches at protocol 1.0.0 (ymir_exc result_writer); YMIR 1.1 reads only
    ``annotations``, YMIR 2.x reads both.
    """
    return "boxes" if protocol_tuple(protocol) >= (1, 0, 0) else "annotations"


def allows_rotate_angle(protocol: str) -> bool:
    """YMIR 1.1's parser rejects any box key but x, y, w, h."""
    return protocol_tuple(protocol) >= (1, 0, 0)


# -- the task kinds and their outputs ------------------------------------------------------------


class TaskKind(str, enum.Enum):
    """What a container run does; env.yaml's ``run_training``/``run_mining``/``run_infer``."""

    TRAINING = "training"
    MINING = "mining"
    INFER = "infer"


#: The order in which the reference executors run combined tasks ("tmi": mining then infer).
TASK_ORDER = (TaskKind.TRAINING, TaskKind.MINING, TaskKind.INFER)

# -- paths ---------------------------------------------------------------------------------------

IN_DIR = "/in"
OUT_DIR = "/out"
ENV_FILE = "/in/env.yaml"
CONFIG_FILE = "/in/config.yaml"
MANIFEST_FILE = "/img-man/manifest.yaml"

#: Environment variables through which the harness tells the SDK (live_code.sdk) where the task's
#: env.yaml and the merged hyper-parameter file are. Not part of YMIR: ours, harness <-> SDK.
ENV_FILE_VAR = "LIVE_CODE_ENV_FILE"
CONFIG_FILE_VAR = "LIVE_CODE_CONFIG_FILE"

#: env.yaml ``input`` section as YMIR 2.x writes it for a task that uses every file.
ENV_INPUT_DEFAULTS: Mapping[str, str] = {
    "root_dir": "/in",
    "assets_dir": "/in/assets",
    "annotations_dir": "/in/annotations",
    "models_dir": "/in/models",
    "training_index_file": "/in/train-index.tsv",
    "val_index_file": "/in/val-index.tsv",
    "candidate_index_file": "/in/candidate-index.tsv",
    "config_file": "/in/config.yaml",
}

#: env.yaml ``output`` section. The platform reads outputs at these fixed places whatever env.yaml says.
ENV_OUTPUT_DEFAULTS: Mapping[str, str] = {
    "root_dir": "/out",
    "models_dir": "/out/models",
    "tensorboard_dir": "/out/tensorboard",
    "training_result_file": "/out/models/result.yaml",
    "mining_result_file": "/out/result.tsv",
    "infer_result_file": "/out/infer-result.json",
    "monitor_file": "/out/monitor.txt",
    "executor_log_file": "/out/ymir-executor-out.log",
}


#: keys that only protocol 1.1.0 (YMIR 2.x) writes
ENV_KEYS_SINCE_1_1_0 = frozenset({"manifest_file", "executor_log_file"})

TRAINING_RESULT_FILE = ENV_OUTPUT_DEFAULTS["training_result_file"]
MINING_RESULT_FILE = ENV_OUTPUT_DEFAULTS["mining_result_file"]
INFER_RESULT_FILE = ENV_OUTPUT_DEFAULTS["infer_result_file"]
MONITOR_FILE = ENV_OUTPUT_DEFAULTS["monitor_file"]
EXECUTOR_LOG_FILE = ENV_OUTPUT_DEFAULTS["executor_log_file"]
#: live-code's own record of a run, beside YMIR's outputs in the out dir (and in models/ after training)
PROVENANCE_NAME = "live-code-provenance.yaml"
#: the env's PEP 751 lock, written beside the provenance (issue 22, live_code.envs.lock)
LOCK_NAME = "pylock.toml"

#: The output each task kind must leave (env.yaml ``output`` key).
REQUIRED_OUTPUT: Mapping[TaskKind, str] = {
    TaskKind.TRAINING: "training_result_file",
    TaskKind.MINING: "mining_result_file",
    TaskKind.INFER: "infer_result_file",
}

#: The index files each task kind reads (env.yaml ``input`` key).
REQUIRED_INDEX: Mapping[TaskKind, tuple[str, ...]] = {
    TaskKind.TRAINING: ("training_index_file", "val_index_file"),
    TaskKind.MINING: ("candidate_index_file",),
    TaskKind.INFER: ("candidate_index_file",),
}


def env_yaml(
    *,
    protocol: str,
    task_id: str,
    kinds: frozenset[TaskKind] | set[TaskKind],
    in_dir: str = IN_DIR,
    out_dir: str = OUT_DIR,
) -> dict[str, object]:
    """The env.yaml mapping YMIR writes for ``kinds`` at ``protocol`` (mir/tools/env_config.py).

    Index files a task does not use are ``''``, as the platform writes them.
    """
    used = {key for kind in kinds for key in REQUIRED_INDEX[kind]}
    inputs = {
        key: (_rebase(value, IN_DIR, in_dir) if (not key.endswith("_index_file") or key in used) else "")
        for key, value in ENV_INPUT_DEFAULTS.items()
    }
    outputs = {
        key: _rebase(value, OUT_DIR, out_dir)
        for key, value in ENV_OUTPUT_DEFAULTS.items()
        if key not in ENV_KEYS_SINCE_1_1_0 or protocol == PROTOCOL_1_1_0
    }
    env: dict[str, object] = {
        "task_id": task_id,
        "run_training": TaskKind.TRAINING in kinds,
        "run_mining": TaskKind.MINING in kinds,
        "run_infer": TaskKind.INFER in kinds,
        "input": inputs,
        "output": outputs,
    }
    if protocol != PROTOCOL_0_0_1:
        env["protocol_version"] = protocol
    if protocol == PROTOCOL_1_1_0:
        env["manifest_file"] = MANIFEST_FILE
    return env


def _rebase(path: str, old_root: str, new_root: str) -> str:
    return new_root + path[len(old_root) :] if path.startswith(old_root) else path


# -- config.yaml ---------------------------------------------------------------------------------

#: Keys the platform injects into config.yaml (contract 3.1).
PLATFORM_KEYS = frozenset(
    {
        "task_id",
        "class_names",
        "gpu_id",
        "gpu_count",
        "object_type",
        "pretrained_model_params",
        "model_params_path",
        "run_mining",
        "run_infer",
        "export_format",
        "shm_size",
        "openpai_enable",
        "max_boxes",
    }
)


class ObjectType(enum.IntEnum):
    DETECTION = 2
    SEMANTIC_SEGMENTATION = 3
    INSTANCE_SEGMENTATION = 4
    MULTI_MODAL = 50


#: export_format annotation names -> the on-disk format (contract 3.1, mir/tools/exporter.py)
EXPORT_FORMATS: Mapping[str, str] = {
    "ark": "ark",
    "det-ark": "ark",
    "voc": "voc",
    "det-voc": "voc",
    "coco": "coco",
    "seg-coco": "coco",
    "none": "none",
}
DEFAULT_EXPORT_FORMAT = "voc:raw"  # the code default when the key is empty or missing
COCO_ANNOTATION_FILE = "coco-annotations.json"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# -- monitor.txt ---------------------------------------------------------------------------------


class MonitorState(enum.IntEnum):
    """``TaskState`` of ymir ``percent_log_util``. An executor writes only RUNNING and ERROR."""

    PENDING = 1
    RUNNING = 2
    DONE = 3
    ERROR = 4


class ReturnCode(enum.IntEnum):
    """``ymir_exc.code.ExecutorReturnCode`` plus the platform codes an executor meets (contract 9.2)."""

    OK = 0
    CONFIG_ERROR = 300001
    DATASET_ERROR = 300002
    UNKNOWN_IMAGE_FORMAT = 300003
    MODEL_NOT_FOUND = 300004
    OBJECT_TYPE_UNSUPPORTED = 300005
    CUDA_MISMATCH = 300101
    NO_GPU = 300102
    OUT_OF_MEMORY = 300103
    NAN_IN_TRAINING = 300201
    NETWORK_ERROR = 300301
    CONTAINER_ERROR = 160004
    NO_RESULT = 160011


class MonitorRecord(NamedTuple):
    task_id: str
    timestamp: float
    percent: float
    state: MonitorState
    return_code: int = 0
    message: str = ""


def format_monitor(record: MonitorRecord) -> str:
    """One monitor.txt record (contract 5)::

        task_id\ttimestamp\tpercent\tstate\treturn_code[\tshort message]
        [more lines of the message]

    The message's first line becomes field 6 (its tabs turned to spaces, since a tab would start
    another field); its other lines follow, where the platform shows them as error detail.
    """
    if not (math.isfinite(record.percent) and 0.0 <= record.percent <= 1.0):
        raise ValueError(f"percent must be within 0..1, got {record.percent!r}")
    line = (
        f"{record.task_id}\t{record.timestamp:.6f}\t{record.percent:.6f}\t{int(record.state)}"
        f"\t{int(record.return_code)}"
    )
    head, _, rest = record.message.replace("\r", "").strip("\n").partition("\n")
    if head:
        line += "\t" + head.replace("\t", " ")
    line += "\n"
    if rest:
        line += rest.rstrip("\n") + "\n"
    return line


def parse_monitor(text: str) -> MonitorRecord:
    """Parse a monitor.txt as the platform does; raises ValueError with the reason."""
    first, _, rest = text.partition("\n")
    fields = first.split("\t")
    if len(fields) < 4:
        raise ValueError(f"monitor.txt needs at least 4 tab-separated fields, found {len(fields)}")
    try:
        timestamp, percent, state = float(fields[1]), float(fields[2]), MonitorState(int(fields[3]))
        return_code = int(fields[4]) if len(fields) > 4 and fields[4] else 0
    except ValueError as e:
        raise ValueError(f"monitor.txt first line is malformed: {e}") from None
    message = "\t".join(fields[5:]) if len(fields) > 5 else ""
    message = "\n".join(x for x in (message, rest.rstrip("\n")) if x)
    return MonitorRecord(fields[0], timestamp, percent, state, return_code, message)


def task_percent_range(kind: TaskKind, kinds: frozenset[TaskKind] | set[TaskKind]) -> tuple[float, float]:
    """The slice of 0..1 one task kind owns when several run in one container.

    SDK convention ``write_monitor_logger_for_multiple_tasks(order='tmi')``: with mining and infer
    both requested, mining maps to [0, 0.5] and infer to [0.5, 1].
    """
    ordered = [k for k in TASK_ORDER if k in kinds]
    if kind not in ordered:
        raise ValueError(f"{kind.value} is not one of the task's kinds")
    i, n = ordered.index(kind), len(ordered)
    return i / n, (i + 1) / n


# -- training result -----------------------------------------------------------------------------

#: Main metric per object type, in the SDK's priority order (maskAP > mIoU > mAP).
MAIN_METRICS = ("maskAP", "mIoU", "mAP")
#: Every float metric a stage may carry; all must lie within 0..1 (ModelStageStorage).
STAGE_METRICS = ("mAP", "mAR", "mIoU", "mAcc", "maskAP", "boxAP")
STAGE_COUNTS = ("tp", "fp", "fn")
MAX_STAGES = 11  # the SDK keeps the 10 newest plus the best
STAGE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LEGACY_STAGE_NAME = "default_best_stage"

# -- infer result --------------------------------------------------------------------------------

BOX_KEYS = ("x", "y", "w", "h")
OPTIONAL_BOX_KEYS = ("rotate_angle",)
