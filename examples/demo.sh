#!/usr/bin/env bash
# The README's first command: on a fresh clone, set up live-code and run the minimal template
# (remote_templates/minimal, a tiny pure-torch detector) on the sample dataset through
# `live-code local`: training, then mining+infer with the trained model, then the report.
#   bash examples/demo.sh
# It creates .venv (the harness) and .venv-fw (torch, the framework base jobs run over) in the
# repository root, as tests/run.sh does, and reuses them on later runs; with root and apt-get it
# installs bubblewrap so the job sees /in read-only and /out as in YMIR (else live-code says it
# falls back to the real paths). Settings (environment):
#   LIVE_CODE_DEMO_DIR         where the task dirs and the report go (default: .demo/<time>)
#   LIVE_CODE_DEMO_SKIP_SETUP  1: use what is installed: $LIVE_CODE (default .venv/bin/live-code) and
#                              $LIVE_CODE_BASE_PYTHON (default .venv-fw/bin/python)
#   LIVE_CODE_BASE_PYTHON      an interpreter that has torch already (then no .venv-fw is made)
#   TORCH_INDEX_URL            where .venv-fw's torch comes from, e.g. https://download.pytorch.org/whl/cpu
#                              for the CPU-only build (default: PyPI, whose Linux torch brings CUDA along)
#   LIVE_CODE_CACHE            the cache of sources and environments (default ~/.cache/live-code)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ "${LIVE_CODE_DEMO_SKIP_SETUP:-0}" != 1 ]; then
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv with $($PY --version)"
        "$PY" -m venv .venv
    fi
    if ! .venv/bin/python -c 'import live_code.commands.local, PIL, matplotlib, tensorboard' >/dev/null 2>&1; then
        echo "==> installing live-code and its report extra into .venv"
        .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[report]'
    fi
    if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing bubblewrap"
        (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
            || echo "warning: could not install bubblewrap; live-code will say that it falls back to the real paths"
    fi
    if [ -n "${LIVE_CODE_BASE_PYTHON:-}" ] && "$LIVE_CODE_BASE_PYTHON" -c 'import torch' >/dev/null 2>&1; then
        echo "==> using the torch of LIVE_CODE_BASE_PYTHON=$LIVE_CODE_BASE_PYTHON"
    elif ! .venv-fw/bin/python -c 'import torch' >/dev/null 2>&1; then
        echo "==> creating .venv-fw with torch (the framework base the jobs run over; a large download, once)"
        "$PY" -m venv .venv-fw
        .venv-fw/bin/python -m pip install -q --disable-pip-version-check \
            ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
    fi
fi
read -r -a LIVE_CODE_CMD <<< "${LIVE_CODE:-.venv/bin/live-code}"
export LIVE_CODE_BASE_PYTHON=${LIVE_CODE_BASE_PYTHON:-$PWD/.venv-fw/bin/python}
DEMO=${LIVE_CODE_DEMO_DIR:-$PWD/.demo/$(date +%Y%m%d-%H%M%S)}
TEMPLATE=remote_templates/minimal

echo "==> training the minimal template on the sample dataset"
"${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task training --dataset sample --work "$DEMO/training"

echo "==> mining and inference with the trained model"
"${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task mining+infer --dataset sample \
    --model "$DEMO/training/out/models" --work "$DEMO/mining-infer"

echo "==> the report"
"${LIVE_CODE_CMD[@]}" report "$DEMO/training/out" "$DEMO/mining-infer/out" --dest "$DEMO/report"

cat <<EOF

The demo is done. Everything is under $DEMO:
  results     $DEMO/training/out/models/result.yaml  (the model stages and their mAP)
              $DEMO/mining-infer/out/result.tsv       (mining scores, best first)
              $DEMO/mining-infer/out/infer-result.json (predicted boxes)
  report      $DEMO/report/report.html
  provenance  $DEMO/training/out/live-code-provenance.yaml
              $DEMO/mining-infer/out/live-code-provenance.yaml
Each task dir (in/, out/, task_config.yaml) replays with: ${LIVE_CODE:-.venv/bin/live-code} replay $DEMO/training
EOF
