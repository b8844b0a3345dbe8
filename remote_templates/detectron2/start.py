"""Entry point of every task kind of the detectron2 template: ``sdk.main`` runs training, then
mining, then infer, as env.yaml asks, and reports a failure in /out/monitor.txt with its YMIR
return code. Each kind's module (and detectron2 with it) is imported only when that kind runs."""

import os

from live_code import sdk

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(4, os.cpu_count() or 1))))  # before torch loads
    sdk.main(train="train:run", mine="mine:run", infer="infer:run")
