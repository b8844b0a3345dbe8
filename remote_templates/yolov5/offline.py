"""Keep ultralytics offline and inside the job's own directories.

ultralytics writes a settings file to a per-user config dir, checks PyPI for updates, sends usage
analytics, auto-installs missing packages with pip, downloads a font for plots and a model for
its AMP check. A YMIR job has a read-only ``/in``, no promise of a network and no business
calling anybody, so before ultralytics is first imported :func:`prepare` points every config and
cache dir under the job's work dir and switches the framework offline, and :func:`guard` (after
the import) turns off what the environment variables do not reach.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from live_code import sdk

logger = logging.getLogger(__name__)

#: under the task's output root: ultralytics' run dir, the converted dataset, configs, caches
WORK_DIR_NAME = "yolov5-work"

# ultralytics.utils reads these at import (env_bool / getenv, ultralytics 8.4)
_OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",  # is_online() is False: no PyPI update check, no analytics, no hub
    "YOLO_AUTOINSTALL": "false",  # check_requirements never runs pip
    "MPLBACKEND": "Agg",  # matplotlib without a display
}
# integrations ultralytics would enable when their packages happen to be installed
_SETTINGS_OFF = (
    "sync",
    "clearml",
    "comet",
    "dvc",
    "mlflow",
    "raytune",
    "tensorboard",
    "wandb",
    "vscode_msg",
    "openvino_msg",
)


class DownloadsDisabled(ConnectionError):
    """ultralytics wanted a file from the internet; this template never lets it."""


def work_dir(env: sdk.Env) -> str:
    """``<output root>/yolov5-work``: never ``/in`` and never ``/out/models`` (which YMIR packs)."""
    path = os.path.join(env.output.root_dir, WORK_DIR_NAME)
    os.makedirs(path, exist_ok=True)
    return path


def prepare(work: str, rank: int = 0) -> None:
    """Environment for ultralytics, matplotlib and torch: offline, every dir under ``work``.

    Must run before ``import ultralytics``. Each rank of a multi-process run gets its own config
    dir so that no two processes write one settings file.
    """
    config = os.path.join(work, "config" if rank == 0 else f"config-rank{rank}")
    dirs = {
        "YOLO_CONFIG_DIR": config,
        "MPLCONFIGDIR": os.path.join(config, "matplotlib"),
        "TORCH_HOME": os.path.join(config, "torch"),
        "XDG_CONFIG_HOME": os.path.join(config, "xdg-config"),
        "XDG_CACHE_HOME": os.path.join(config, "xdg-cache"),
    }
    for name, path in dirs.items():
        os.makedirs(path, exist_ok=True)
        os.environ[name] = path
    os.environ.update(_OFFLINE_ENV)
    os.environ.pop("ULTRALYTICS_API_KEY", None)  # no upload to the Ultralytics platform


def guard(work: str) -> None:
    """After ``import ultralytics``: settings off and into ``work``, downloads refused, and the AMP
    check (which loads a downloaded model) skipped."""
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_module
    import ultralytics.utils as utils_module
    from ultralytics.utils import SETTINGS, downloads

    dirs = {
        "datasets_dir": os.path.join(work, "datasets"),
        "weights_dir": os.path.join(work, "weights"),
        "runs_dir": os.path.join(work, "runs"),
    }
    SETTINGS.update({**{key: False for key in _SETTINGS_OFF if key in SETTINGS}, **dirs})
    # the module globals ultralytics derived from the settings at import (the default is the cwd)
    for module in (utils_module, data_utils):
        for name, key in (("DATASETS_DIR", "datasets_dir"), ("WEIGHTS_DIR", "weights_dir"), ("RUNS_DIR", "runs_dir")):
            if hasattr(module, name):
                setattr(module, name, Path(dirs[key]))

    def refuse(url: Any = "", *args: Any, **kwargs: Any) -> Any:
        msg = (
            f"ultralytics tried to download {url!s}; this template runs offline. Give model files "
            "through pretrained_model_params or pretrained_weights (see README.md)"
        )
        raise DownloadsDisabled(msg)

    real_is_url = downloads.is_url

    def is_url(url: Any, check: bool = False) -> bool:  # check=True would send a HEAD request
        return False if check else bool(real_is_url(url, check=False))

    # every download of ultralytics goes through safe_download (attempt_download_asset, check_font,
    # download) or asks GitHub's API for a release's assets; data.utils holds names of its own
    downloads.safe_download = refuse
    downloads.get_github_assets = refuse
    downloads.is_url = is_url
    data_utils.safe_download = refuse
    data_utils.download = refuse

    def check_amp(model: Any) -> bool:
        # the real check compares against yolo26n.pt, which it downloads; AMP stays as configured
        if next(model.parameters()).device.type in ("cpu", "mps"):
            return False  # as the real check: AMP only on CUDA
        logger.info("AMP self-check skipped (it needs a downloaded model); mixed precision stays on as configured")
        return True

    trainer_module.check_amp = check_amp
