"""What a repository in the legacy layout is given, because the original live-code image gave it.

Repos written for the original image (``start.py`` or ``ymir/start.py``, ``extra-requirements.txt``)
never listed what that image carried (original-live-code-and-detectors.md): the executor SDK
``ymir_exc``, ``loguru``, ``opencv-python`` (and numpy), and they ran with ``PYTHONPATH=.`` from the
repo root. So for such a repo (and only such: a ``live-code.yaml`` repo lists what it needs) the job
env gets, unless the repo's own requirements name them:

- the executor SDK its code was written against. Two incompatible lineages exist
  (ymir-contract.md §10): PyPI ``ymir-exc==1.1.0.523`` (YMIR 1.1: ``write_training_result(
  model_names=..., mAP=...)``) and the 2.x SDK of ``modelai/ymir-executor-sdk`` (not on PyPI:
  ``ymir_exc.util``, ``write_model_stage``, ...). :func:`detect_sdk` reads the repo's Python files
  to choose; the task key ``live_code_ymir_exc`` (``auto``, ``1``, ``2``, ``none``) overrides it,
  and a ``ymir-exc`` line in the repo's requirements overrides both;
- ``loguru`` and ``opencv-python-headless`` (the same ``cv2`` as the original's ``opencv-python``,
  without the X11/OpenGL libraries a headless job never uses); any ``opencv-*python*`` line of the
  repo counts as its own opencv.

Their wheels (and their dependencies', all pinned) come from a wheelhouse baked into the images
(``LIVE_CODE_SDK_WHEELHOUSE``, made by ``base_images/common/build-sdk-wheelhouse.sh``), so an
air-gapped site gets them with no index at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from live_code.errors import ConfigError, EnvironmentBuildError
from live_code.record import record

#: the PyPI name of the executor SDK (both lineages use it)
SDK_NAME = "ymir-exc"
#: the SDK of YMIR 1.1, on PyPI
SDK1_VERSION = "1.1.0.523"
#: the 2.x SDK: modelai/ymir-executor-sdk at this commit (branch ymir2.1.0, = master), version 2.1.1.0215
SDK2_VERSION = "2.1.1.215"
SDK2_REPO = "https://github.com/modelai/ymir-executor-sdk.git"
SDK2_COMMIT = "8bfd7311a28437a29a7ab8d3f308a1fa2250c2ce"
#: what else the original images gave user code (pinned: the wheelhouse carries exactly these)
EXTRAS = {"loguru": "loguru==0.7.3", "opencv": "opencv-python-headless==4.10.0.84"}
#: the operator setting naming the wheelhouse with all of the above (the images set it)
WHEELHOUSE_VAR = "LIVE_CODE_SDK_WHEELHOUSE"
#: the task key that chooses the SDK
TASK_KEY = "live_code_ymir_exc"
CHOICES = ("auto", "1", "2", "none")
#: recorded as the origin of every implied requirement
IMPLIED = "implied by the legacy layout"

# Modules and names of the 2.x SDK that ymir-exc 1.1.0.523 does not have (its modules are only
# dataset_reader, env, monitor, result_writer and settings); facts from both packages' sources.
_SDK2_MODULES = ("util", "executor", "dataset_convert", "code", "sysinfo")
_SDK2_NAMES = (
    "write_model_stage",
    "write_monitor_logger_for_multiple_tasks",
    "write_tensorboard_text",
    "write_final_executor_log",
    "multiple_model_stages_supportable",
    "items_count",
    "images_count",
    "bboxes_count",
    "filter_broken_images",
    "YmirTask",
    "get_merged_config",
    "get_weight_files",
    "write_ymir_training_result",
    "write_ymir_monitor_process",
    "YmirStage",
)
_IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+ymir_exc\b|import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*ymir_exc\b)", re.M)
# what follows ``import`` up to the end of the line, or of a parenthesised list
_IMPORTED = r"\bimport[ \t]*(?:\([^)]*?|[^\n(]*?)"
_SDK2_MODULE_RE = re.compile(
    r"ymir_exc\.(" + "|".join(_SDK2_MODULES) + r")\b"
    r"|^[ \t]*from[ \t]+ymir_exc[ \t]+" + _IMPORTED + r"\b(" + "|".join(_SDK2_MODULES) + r")\b",
    re.M,
)
# a 2.x-only function or class, used as an attribute (``rw.write_model_stage``) or imported by name
_SDK2_NAME_RE = re.compile(r"(?:\.[ \t]*|" + _IMPORTED + r"\b)(" + "|".join(_SDK2_NAMES) + r")\b")
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".tox", ".mypy_cache", "site-packages"}
_MAX_FILES = 5000
_MAX_BYTES = 1 << 20


@record
class SdkChoice:
    """Which executor SDK a legacy job gets (``generation`` None: none), and why."""

    generation: str | None
    reason: str

    @property
    def requirement(self) -> str | None:
        if self.generation is None:
            return None
        return f"{SDK_NAME}=={SDK1_VERSION if self.generation == '1' else SDK2_VERSION}"


@record
class Implied:
    """What the legacy layout adds to a job: requirement lines (with the reason for each) and the
    repo root on ``PYTHONPATH``."""

    #: (requirement, why), installed over the base with the repo's own requirements
    requirements: tuple[tuple[str, str], ...]
    sdk: SdkChoice
    #: the wheelhouse holding the implied wheels, or None (they then come from the task's index)
    wheelhouse: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "layout": "legacy",
            "pythonpath": "the repository root (as the original image's PYTHONPATH=.)",
            "ymir_exc": {"sdk": self.sdk.requirement or "none", "reason": self.sdk.reason},
            "packages": [{"requirement": r, "why": f"{IMPLIED}: {why}"} for r, why in self.requirements],
            "wheelhouse": self.wheelhouse,
        }


NOTHING = Implied((), SdkChoice(None, "not a legacy-layout repository"), None)


def sdk_option(value: object, source: str = "config.yaml") -> str:
    """The ``live_code_ymir_exc`` task key, normalised to one of :data:`CHOICES`."""
    if value is None or value == "":
        return "auto"
    text = str(value).strip().lower()
    text = {"1.x": "1", "2.x": "2", "false": "none", "no": "none", "off": "none"}.get(text, text)
    if isinstance(value, bool) or text not in CHOICES:
        raise ConfigError(
            f"{source}: {TASK_KEY} must be one of {', '.join(CHOICES)}",
            value=value,
            hint=f"{TASK_KEY}: 1 for PyPI ymir-exc {SDK1_VERSION} (YMIR 1.x), 2 for the executor "
            "SDK 2.x, none for no SDK, auto (default) to choose from the repository's imports",
        )
    return text


def detect_sdk(repo_dir: str | os.PathLike[str]) -> SdkChoice:
    """The SDK generation the repo's Python files were written against, from what they import and
    call: 2 when any file uses a module or function only the 2.x SDK has, 1 when ymir_exc is
    imported and nothing of the kind is used, None when no file imports ymir_exc."""
    first_import: str | None = None
    for rel, text in _python_files(Path(repo_dir)):
        imported = _IMPORT_RE.search(text)
        if not imported:
            continue
        where = f"{rel}:{text.count(chr(10), 0, imported.start()) + 1}"
        first_import = first_import or where
        m = _SDK2_MODULE_RE.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            return SdkChoice("2", f"{rel}:{line} uses ymir_exc.{m.group(1) or m.group(2)}, which only the 2.x SDK has")
        m = _SDK2_NAME_RE.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            return SdkChoice("2", f"{rel}:{line} uses {m.group(1)}, which only the 2.x SDK has")
    if first_import:
        return SdkChoice("1", f"{first_import} imports ymir_exc and no file uses anything only the 2.x SDK has")
    return SdkChoice(None, "no Python file of the repository imports ymir_exc")


def choose_sdk(repo_dir: str | os.PathLike[str], option: str, own: Mapping[str, str]) -> SdkChoice:
    """The SDK for the job: the repo's own ``ymir-exc`` line, else the task key, else detection.
    ``own`` maps the canonical names of the repo's requirements to their ``file:line``."""
    if SDK_NAME in own:
        return SdkChoice(None, f"the repository lists its own ymir-exc ({own[SDK_NAME]})")
    if option == "none":
        return SdkChoice(None, f"{TASK_KEY}: none")
    if option in ("1", "2"):
        return SdkChoice(option, f"{TASK_KEY}: {option}")
    return detect_sdk(repo_dir)


def implied(
    repo_dir: str | os.PathLike[str],
    own: Mapping[str, str],
    option: str = "auto",
    environ: Mapping[str, str] | None = None,
) -> Implied:
    """What a legacy repo is given. ``own``: canonical name -> ``file:line`` of the repo's requirements."""
    sdk = choose_sdk(repo_dir, option, own)
    reqs: list[tuple[str, str]] = []
    if sdk.requirement:
        reqs.append((sdk.requirement, f"executor SDK {sdk.generation}.x ({sdk.reason})"))
    if "loguru" not in own:
        reqs.append((EXTRAS["loguru"], "the original image had loguru"))
    opencv = next((f"{name} ({origin})" for name, origin in own.items() if _is_opencv(name)), None)
    if opencv is None:
        reqs.append((EXTRAS["opencv"], "the original image had opencv-python (cv2); this is its headless build"))
    return Implied(tuple(reqs), sdk, wheelhouse(environ))


def wheelhouse(environ: Mapping[str, str] | None = None) -> str | None:
    """The operator's SDK wheelhouse (``LIVE_CODE_SDK_WHEELHOUSE``), checked; None when unset."""
    env = os.environ if environ is None else environ
    value = env.get(WHEELHOUSE_VAR, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_dir() or not any(path.glob("*.whl")):
        msg = f"{WHEELHOUSE_VAR}={value} is not a directory of wheels"
        hint = "point it at the folder made by base_images/common/build-sdk-wheelhouse.sh, or unset it"
        raise EnvironmentBuildError(msg, value=value, hint=hint)
    return str(path.resolve())


def missing_sdk2_hint() -> str:
    return (
        f"the 2.x executor SDK is not on PyPI: set {WHEELHOUSE_VAR} to a wheelhouse made by "
        "base_images/common/build-sdk-wheelhouse.sh (the live-code images have one), or list "
        f"`ymir-exc @ git+{SDK2_REPO.removesuffix('.git')}@{SDK2_COMMIT}` in extra-requirements.txt"
    )


def missing_wheels(requirements: Iterable[str], find_links: Iterable[str]) -> list[str]:
    """The ``name==version`` requirements with no wheel in any local folder of ``find_links``
    (URLs are not looked into: what they hold is known only to the installer)."""
    folders = [Path(f) for f in find_links if "://" not in f and Path(f).is_dir()]
    if len(folders) < len([f for f in find_links if "://" not in f]) or any("://" in f for f in find_links):
        return []  # a link page or missing folder: leave the verdict to the installer
    names = {p.name.lower() for folder in folders for p in folder.glob("*.whl")}
    missing = []
    for req in requirements:
        name, _, version = req.partition("==")
        prefix = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version.lower()}-"
        if not any(n.startswith(prefix) for n in names):
            missing.append(req)
    return missing


def _is_opencv(name: str) -> bool:
    # opencv-python, opencv-python-headless, opencv-contrib-python(-headless): all provide cv2
    return name.startswith("opencv-") and "python" in name


def _python_files(repo: Path) -> Iterator[tuple[str, str]]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            path = Path(dirpath, fn)
            count += 1
            if count > _MAX_FILES:
                return
            try:
                if path.is_symlink() or path.stat().st_size > _MAX_BYTES:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            yield path.relative_to(repo).as_posix(), text


def requirement_names(lines: Iterable[tuple[str | None, str]]) -> dict[str, str]:
    """canonical name -> origin of the first line naming it, from ``(name, origin)`` pairs."""
    out: dict[str, str] = {}
    for name, origin in lines:
        if name and name not in out:
            out[name] = origin
    return out
