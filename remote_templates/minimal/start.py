"""Entry point of every task kind: ``sdk.main`` runs training, then mining, then infer, as env.yaml
asks, and reports a failure in /out/monitor.txt with its YMIR return code (see README.md)."""

import os
import warnings

from live_code import sdk

if __name__ == "__main__":
    # a base image without numpy makes torch warn at import; nothing here needs numpy
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    sdk.main(train="train:run", mine="mine:run", infer="infer:run")
