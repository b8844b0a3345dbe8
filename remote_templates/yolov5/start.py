"""Entry point of every task kind: ``sdk.main`` runs training, or mining then infer, as env.yaml
asks, and reports a failure in /out/monitor.txt with its YMIR return code. Under torchrun
(gpu_count > 1) every process runs this file (see jobs.py)."""

import sys

import jobs

from live_code import sdk

if __name__ == "__main__":
    job = jobs.prepare()
    if job is None:  # a rank with nothing to do
        sys.exit(0)
    try:
        status = sdk.main(train=job.train, mine=job.mine, infer=job.infer, exit=False)
    finally:
        job.close()
    sys.exit(status)
