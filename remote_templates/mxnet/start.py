"""Entry point of every task kind: ``sdk.main`` runs training, then mining, then infer, as env.yaml
asks, and reports a failure in /out/monitor.txt with its YMIR return code (see README.md)."""

import os

from live_code import sdk

if __name__ == "__main__":
    # MXNet reads its thread settings when it is imported (by the task's module): a few threads,
    # unless the operator set them
    for name in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS"):
        os.environ.setdefault(name, str(max(1, min(4, os.cpu_count() or 1))))
    sdk.main(train="train:run", mine="mine:run", infer="infer:run")
