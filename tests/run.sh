#!/usr/bin/env bash
# The README's test command. Installs everything the tests need, then runs the whole suite.
#   bash tests/run.sh [pytest args...]
# Creates .venv (the harness with its dev extra) in the repo root and reuses it on later runs.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
echo "==> installing live-code and its test dependencies into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,report]'

LOST="tests that need it will be skipped with that reason"
. tests/helpers/install-bwrap.sh

# Headless Chromium opens the report page in tests/test_report.py (issue 23, Debian package).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium (headless, for the report's browser test)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
            >/dev/null 2>&1 || echo "warning: could not install chromium; the report's browser test will be skipped"
    else
        echo "warning: chromium is not installed; the report's browser test will be skipped with that reason"
    fi
fi

# The SDK wheelhouse of the images (issue 18, live_code/task/legacy.py): the executor SDKs ymir-exc 1.x and
# 2.x (2.x built from ../shared/sources/ymir-executor-sdk.bundle at the pinned commit, as the images
# build it from GitHub), loguru, opencv-python-headless and their pinned dependencies, as wheels for
# this Python. Made once per machine (keyed by the pins and the script); tests give it to legacy jobs
# as LIVE_CODE_SDK_WHEELHOUSE.
SDK_BUNDLE=${LIVE_CODE_SDK_BUNDLE:-$(cd .. && pwd)/shared/sources/ymir-executor-sdk.bundle}
SDK_KEY=$(cat base_images/common/sdk-wheelhouse.txt base_images/common/build-sdk-wheelhouse.sh | sha256sum | cut -c1-12)
SDK_WHEELS="${LIVE_CODE_TEST_WHEELS:-$HOME/.cache/live-code-tests/wheels}/sdk-wheelhouse-$("$PY" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')-$SDK_KEY"
if [ ! -d "$SDK_WHEELS" ]; then
    if [ -f "$SDK_BUNDLE" ]; then
        echo "==> building the SDK wheelhouse (ymir-exc 1.x and 2.x with their dependencies) into $SDK_WHEELS"
        SDK_SRC=$(mktemp -d)
        git clone -q "$SDK_BUNDLE" "$SDK_SRC/ymir-executor-sdk"
        git -C "$SDK_SRC/ymir-executor-sdk" checkout -q 8bfd7311a28437a29a7ab8d3f308a1fa2250c2ce
        mkdir -p "$(dirname "$SDK_WHEELS")"
        PYTHON="$PY" bash base_images/common/build-sdk-wheelhouse.sh "$SDK_WHEELS" "$SDK_SRC/ymir-executor-sdk" \
            || echo "warning: the SDK wheelhouse could not be built; the tests that need it will be skipped with that reason"
        rm -rf "$SDK_SRC"
    else
        echo "warning: $SDK_BUNDLE is missing: no SDK wheelhouse; the tests that need it will be skipped with that reason"
    fi
fi
[ -d "$SDK_WHEELS" ] && export LIVE_CODE_TEST_SDK_WHEELHOUSE="$SDK_WHEELS"

# test_venv DIR CHECK WHAT REQUIREMENT...: unless DIR's python runs the CHECK code, DIR is made
# afresh, a venv of $PY with the REQUIREMENTs from the registry (WHAT says what and why).
test_venv() {
    local dir=$1 check=$2 what=$3
    shift 3
    if ! "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "==> creating $dir with $what"
        rm -rf "$dir"
        "$PY" -m venv "$dir"
        "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
    fi
}

# The framework base that job environments are layered over in the framework tests (an image's
# torch interpreter, in the image). Installed once and shared by every test that needs it.
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ]; then
    test_venv .venv-fw 'import torch' "torch (the framework base for the framework tests)" torch==2.13.0
    export LIVE_CODE_TEST_FRAMEWORK_PYTHON="$PWD/.venv-fw/bin/python"
fi

# TensorBoard itself, to read back the event files the SDK writes (tests/test_sdk_tensorboard.py).
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ]; then
    test_venv .venv-tb 'import tensorboard' "tensorboard (reads back the SDK's event files)" tensorboard==2.21.0
    export LIVE_CODE_TEST_TENSORBOARD_PYTHON="$PWD/.venv-tb/bin/python"
fi

# --- yolov5 template (tests/test_template_yolov5.py) ------------------------------------------------
# The framework base of the yolov5 template's test, as a torch image has it: torch + torchvision
# (ultralytics, onnx and onnxruntime come from the template's requirements.txt into the job env).
# Installed once per machine; PyPI's torch brings the CUDA libraries (about 5 GB, which still run on CPU).
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ]; then
    test_venv .venv-yolo 'import torch, torchvision; assert torch.__version__.split("+")[0] == "2.15.0"' \
        "torch 2.15.0 and torchvision 0.29.2 (the base of the yolov5 template's test)" torch==2.15.0 torchvision==0.29.2
    export LIVE_CODE_TEST_YOLO_PYTHON="$PWD/.venv-yolo/bin/python"
fi
# --- end of the yolov5 block --------------------------------------------------------------------------

# --- the MXNet base (issue 10): .venv-mx with mxnet 1.9.1 and numpy 1.23.5 (mxnet breaks with numpy
# >= 1.24), made by the mxnet image's own step with the CPU wheel; for tests/test_template_minimal_mxnet.py.
# numpy 1.23.5 has wheels for Python 3.8 to 3.11 only: a newer $PY hands over to python3.11/3.10/3.9.
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ]; then
    if ! .venv-mx/bin/python -c 'import mxnet; assert mxnet.__version__ == "1.9.1"' >/dev/null 2>&1; then
        mx_py=$PY
        for candidate in "$PY" python3.11 python3.10 python3.9; do
            if "$candidate" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' >/dev/null 2>&1; then
                mx_py=$candidate
                break
            fi
        done
        echo "==> creating .venv-mx with mxnet 1.9.1 over $("$mx_py" --version 2>&1) (the MXNet base for the mxnet tests)"
        rm -rf .venv-mx
        PYTHON="$mx_py" MXNET_PACKAGE=mxnet bash base_images/mxnet/install-mxnet.sh .venv-mx >/dev/null
    fi
    export LIVE_CODE_TEST_MXNET_PYTHON="$PWD/.venv-mx/bin/python"
fi
# --- end of the MXNet base

# --- mmdet (issue 9) ------------------------------------------------------------------------------------
# mmcv 2.1.0 (what mmdet 3.3 needs) has no wheels on the registry: build one from its source release
# (C++ ops, CPU) against the framework base's torch, once per machine, into a wheelhouse named after
# that torch version (the ops link against it); tests/test_template_mmdet.py gives the folder to its
# tasks as pip_find_links. The build took 48 min (33 min of CPU) on the shared 2-core dev machine,
# so about 20 min on 2 idle cores; later runs on the machine reuse the wheel.
# LIVE_CODE_SKIP_MMCV_BUILD=1 skips it (the mmdet end-to-end test is then skipped, saying so).
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ] && [ -n "${LIVE_CODE_TEST_FRAMEWORK_PYTHON:-}" ]; then
    MMCV_TORCH=$("$LIVE_CODE_TEST_FRAMEWORK_PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)
    MMCV_WHEELS="${LIVE_CODE_TEST_WHEELS:-$HOME/.cache/live-code-tests/wheels}/mmcv-2.1.0-torch$MMCV_TORCH"
    if ! ls "$MMCV_WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1 && [ "${LIVE_CODE_SKIP_MMCV_BUILD:-0}" != 1 ]; then
        echo "==> building the mmcv 2.1.0 wheel against torch $MMCV_TORCH (once per machine; about 20 min on 2 idle cores)"
        MMCV_BUILD="$MMCV_WHEELS.build"  # a build venv seeing the base's torch, outside the repo
        rm -rf "$MMCV_BUILD" "$MMCV_WHEELS.partial"
        "$PY" -m venv "$MMCV_BUILD"
        "$LIVE_CODE_TEST_FRAMEWORK_PYTHON" -c 'import site; print(site.getsitepackages()[0])' \
            > "$(echo "$MMCV_BUILD"/lib/python3*/site-packages)/framework-base.pth"
        "$MMCV_BUILD/bin/python" -m pip install -q --disable-pip-version-check "setuptools<70" wheel==0.48.0 ninja==1.13.2 numpy==1.26.4
        MMCV_START=$(date +%s)
        if MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "$MMCV_BUILD/bin/python" -m pip wheel -q --disable-pip-version-check \
                --no-build-isolation --no-deps -w "$MMCV_WHEELS.partial" mmcv==2.1.0 >"$MMCV_BUILD/build.log" 2>&1; then
            mv "$MMCV_WHEELS.partial" "$MMCV_WHEELS"
            echo "==> mmcv wheel built in $(( $(date +%s) - MMCV_START )) s: $(ls "$MMCV_WHEELS")"
        else
            echo "warning: the mmcv build failed (log: $MMCV_BUILD/build.log); the mmdet end-to-end test will be skipped"
            tail -5 "$MMCV_BUILD/build.log" || true
        fi
    fi
    export LIVE_CODE_TEST_MMCV_WHEELHOUSE="$MMCV_WHEELS"
fi
# --- end of the mmdet block

# --- detectron2 (issue 21) --------------------------------------------------------------------------------
# detectron2 is not on the registry and github.com may be out of reach; ../shared/sources/detectron2.bundle
# holds its history. Once per machine: (1) its wheel (C++ ops, CPU) at the commit the template pins, built
# against the yolov5 base's torch + torchvision (detectron2 needs both) through a build venv that sees them
# (a .pth, as for mmcv), into a wheelhouse named after the commit and that torch (2 min 13 s on 2 idle
# cores); tests/test_template_detectron2.py gives it to its tasks as pip_find_links. (2) A wheelhouse of
# the template's other requirements, for the air-gapped test: it runs with no network but 127.0.0.1, where
# a git server serves the bundle as github.com's mirror and the installer builds detectron2 from it.
# LIVE_CODE_SKIP_DETECTRON2_BUILD=1 skips both (those tests are then skipped, saying so).
if [ "${LIVE_CODE_SKIP_FRAMEWORKS:-0}" != 1 ] && [ -n "${LIVE_CODE_TEST_YOLO_PYTHON:-}" ]; then
    D2_BUNDLE=${LIVE_CODE_DETECTRON2_BUNDLE:-$(cd .. && pwd)/shared/sources/detectron2.bundle}
    D2_REQS=remote_templates/detectron2/requirements.txt
    D2_COMMIT=$(sed -n 's|^detectron2 @ git+https://github.com/facebookresearch/detectron2@\([0-9a-f]\{40\}\)$|\1|p' "$D2_REQS")
    D2_TORCH=$("$LIVE_CODE_TEST_YOLO_PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)
    D2_ROOT="${LIVE_CODE_TEST_WHEELS:-$HOME/.cache/live-code-tests/wheels}"
    D2_WHEELS="$D2_ROOT/detectron2-${D2_COMMIT:0:12}-torch$D2_TORCH"
    D2_DEPS="$D2_ROOT/detectron2-deps-$("$LIVE_CODE_TEST_YOLO_PYTHON" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')-$(sha256sum "$D2_REQS" | cut -c1-12)"
    if [ "${LIVE_CODE_SKIP_DETECTRON2_BUILD:-0}" = 1 ]; then
        :
    elif [ ! -f "$D2_BUNDLE" ]; then
        echo "warning: $D2_BUNDLE is missing: no detectron2 wheel; the detectron2 end-to-end tests will be skipped"
    else
        if ! ls "$D2_WHEELS"/detectron2-*.whl >/dev/null 2>&1; then
            echo "==> building the detectron2 wheel at ${D2_COMMIT:0:12} against torch $D2_TORCH (once per machine; about 2-3 min)"
            D2_BUILD="$D2_WHEELS.build"  # a build venv seeing the base's torch, outside the repo
            rm -rf "$D2_BUILD" "$D2_WHEELS.partial"
            "$PY" -m venv "$D2_BUILD"
            "$LIVE_CODE_TEST_YOLO_PYTHON" -c 'import site; print(site.getsitepackages()[0])' \
                > "$(echo "$D2_BUILD"/lib/python3*/site-packages)/framework-base.pth"
            "$D2_BUILD/bin/python" -m pip install -q --disable-pip-version-check "setuptools<81" wheel==0.48.0 ninja==1.13.2
            git clone -q "$D2_BUNDLE" "$D2_BUILD/detectron2"
            git -C "$D2_BUILD/detectron2" checkout -q "$D2_COMMIT"
            D2_START=$(date +%s)
            if MAX_JOBS="$(nproc)" "$D2_BUILD/bin/python" -m pip wheel -q --disable-pip-version-check --no-build-isolation \
                    --no-deps -w "$D2_WHEELS.partial" "$D2_BUILD/detectron2" >"$D2_BUILD.log" 2>&1; then
                mv "$D2_WHEELS.partial" "$D2_WHEELS"
                rm -rf "$D2_BUILD" "$D2_BUILD.log"
                echo "==> detectron2 wheel built in $(( $(date +%s) - D2_START )) s: $(ls "$D2_WHEELS")"
            else
                echo "warning: the detectron2 build failed (log: $D2_BUILD.log); its end-to-end tests will be skipped"
                tail -5 "$D2_BUILD.log" || true
            fi
        fi
        if [ ! -d "$D2_DEPS" ]; then
            echo "==> collecting the detectron2 template's other requirements as wheels into $D2_DEPS"
            rm -rf "$D2_DEPS.partial"
            D2_LIST=$(mktemp)
            if grep -v '^detectron2 @' "$D2_REQS" > "$D2_LIST" \
                    && "$LIVE_CODE_TEST_YOLO_PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps \
                        -r "$D2_LIST" -w "$D2_DEPS.partial" >"$D2_DEPS.log" 2>&1; then
                mv "$D2_DEPS.partial" "$D2_DEPS"
                rm -f "$D2_DEPS.log"
            else
                echo "warning: could not collect them (log: $D2_DEPS.log); the air-gapped detectron2 test will be skipped"
            fi
            rm -f "$D2_LIST"
        fi
    fi
    export LIVE_CODE_TEST_DETECTRON2_WHEELHOUSE="$D2_WHEELS" LIVE_CODE_TEST_DETECTRON2_DEPS="$D2_DEPS"
    export LIVE_CODE_TEST_DETECTRON2_BUNDLE="$D2_BUNDLE"
fi
# --- end of the detectron2 block
# --- the images, built and run (issue 20): tests/test_images_built.py ------------------------------------
# buildah builds the torch, mxnet and prefetch images from their Dockerfiles, on stand-in bases made
# from Debian packages (mmdebstrap; docker hub is out of reach), and bubblewrap runs them as YMIR
# does. Root only (buildah's storage and mounts); elsewhere those tests skip, saying so. Each image is
# built once per machine and build inputs (tests/helpers/images.py keys them), here, so the build times show
# in the log; rootfs tarballs and wheels are cached in ~/.cache/live-code-tests/. About 6 min the
# first time on 2 cores. LIVE_CODE_SKIP_IMAGES=1 skips the step (the tests then build what they need).
if [ "$(id -u)" = 0 ] && [ "${LIVE_CODE_SKIP_IMAGES:-0}" != 1 ]; then
    if ! command -v buildah >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1 \
            || ! command -v bwrap >/dev/null 2>&1; then
        echo "==> installing buildah, mmdebstrap and bubblewrap (the image tests)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap bubblewrap) \
            >/dev/null 2>&1 || echo "warning: could not install buildah, mmdebstrap and bubblewrap; the image tests will be skipped with that reason"
    fi
    echo "==> building the images on stand-in bases (reused when built before with the same inputs)"
    LIVE_CODE_SDK_BUNDLE="$SDK_BUNDLE" .venv/bin/python -m tests.helpers.images build \
        || echo "warning: an image did not build; tests/test_images_built.py fails with the build's log"
elif [ "$(id -u)" != 0 ]; then
    echo "note: not root: the image tests (buildah) will be skipped, saying so"
fi
# --- end of the images block

# --- lint, format and types (issue 19): the same three checks as .pre-commit-config.yaml, with the
# versions pinned in pyproject.toml's dev extra and their settings there. LIVE_CODE_SKIP_CHECKS=1 skips them
# (for a quick rerun of one module; CI never sets it).
if [ "${LIVE_CODE_SKIP_CHECKS:-0}" != 1 ]; then
    echo "==> ruff check (lint)"
    .venv/bin/ruff check --quiet . || {
        echo "error: ruff check found problems (above); fix them, or run '.venv/bin/ruff check --fix .' for the safe fixes" >&2
        exit 1
    }
    echo "==> ruff format --check"
    .venv/bin/ruff format --check --quiet . || {
        echo "error: files above are not formatted; run '.venv/bin/ruff format .'" >&2
        exit 1
    }
    echo "==> mypy (live_code)"
    .venv/bin/mypy || {
        echo "error: mypy found type errors in live_code (above); settings in pyproject.toml [tool.mypy]" >&2
        exit 1
    }
fi
# --- end of the checks

# The suite's temp folders peak at about 4.5 GB (a whole CI run, measured; a passing test's are
# removed as it ends, see tmp_path_retention_policy in pyproject.toml). Say how much there is, so a
# run that fails with ENOSPC shows why in its first lines.
TMP_FREE_MB=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR==2 {print $4}')
echo "==> ${TMP_FREE_MB} MB free in ${TMPDIR:-/tmp}"
if [ "${TMP_FREE_MB:-0}" -lt 8192 ]; then
    echo "warning: the suite's temp folders peak at about 4.5 GB in ${TMPDIR:-/tmp}, and less than 8 GB is free there; set TMPDIR to a roomier disk if it fails with 'No space left on device'"
fi
echo "==> running the tests"
exec .venv/bin/python -m pytest "$@"
