#!/usr/bin/env bash
# The yolov5 template on live-code's sample dataset, on the CPU: training, finetuning, mining with
# each algorithm, mining + infer. See README.md next to this file.
#   LIVE_CODE_BASE_PYTHON=/path/to/python-with-torch-and-torchvision bash examples/yolov5/run-sample.sh
# Settings (environment): LIVE_CODE (default .venv/bin/live-code), LIVE_CODE_BASE_PYTHON (required),
# YOLO_EXAMPLE_DIR (where the task dirs go; default .demo/yolov5-<time>).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${LIVE_CODE_BASE_PYTHON:-}" ] || ! "$LIVE_CODE_BASE_PYTHON" -c 'import torch, torchvision' >/dev/null 2>&1; then
    echo "error: set LIVE_CODE_BASE_PYTHON to an interpreter with torch and torchvision (tests/run.sh makes .venv-yolo)" >&2
    exit 2
fi
export LIVE_CODE_BASE_PYTHON
read -r -a LIVE_CODE_CMD <<< "${LIVE_CODE:-.venv/bin/live-code}"
DIR=${YOLO_EXAMPLE_DIR:-$PWD/.demo/yolov5-$(date +%Y%m%d-%H%M%S)}
TEMPLATE=remote_templates/yolov5
EXAMPLES=examples/yolov5
CPU=(--set batch_size_per_gpu=8 --set num_workers_per_gpu=0)

echo "==> training yolov5n on the sample dataset ($EXAMPLES/training-cpu.yaml)"
"${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task training --dataset sample \
    --config "$EXAMPLES/training-cpu.yaml" --work "$DIR/training"

echo "==> finetuning it for 3 epochs ($EXAMPLES/finetuning.yaml, at 128 px)"
"${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task training --dataset sample --model "$DIR/training/out/models" \
    --config "$EXAMPLES/finetuning.yaml" --set epochs=3 --set img_size=128 "${CPU[@]}" --work "$DIR/finetuning"

for algorithm in random entropy aldd cald; do
    echo "==> mining with $algorithm ($EXAMPLES/mining.yaml)"
    "${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task mining --dataset sample --model "$DIR/training/out/models" \
        --config "$EXAMPLES/mining.yaml" --set mining_algorithm="$algorithm" "${CPU[@]}" --work "$DIR/mining-$algorithm"
done

echo "==> mining and infer in one run ($EXAMPLES/infer.yaml)"
"${LIVE_CODE_CMD[@]}" local --repo "$TEMPLATE" --task mining+infer --dataset sample --model "$DIR/training/out/models" \
    --config "$EXAMPLES/infer.yaml" --set mining_algorithm=entropy "${CPU[@]}" --work "$DIR/mining-infer"

cat <<EOF

Done. Under $DIR:
  training/out/models/result.yaml        the stages (best, epoch_30, epoch_60) and their mAP50
  training/out/models/best/best.onnx     the ONNX export, checked against torch
  finetuning/out/models/result.yaml      the finetuned model
  mining-*/out/result.tsv                mining scores per algorithm, best first
  mining-infer/out/infer-result.json     predicted boxes
EOF
