"""A job written against PyPI ymir-exc==1.1.0.523, the way original live-code repos were.

It reads /in/env.yaml itself (ymir-exc hard-codes the path) and writes the legacy formats.
"""

import os

from ymir_exc import dataset_reader as dr
from ymir_exc import env, monitor
from ymir_exc import result_writer as rw

cfg = env.get_executor_config()
e = env.get_current_env()
classes = cfg["class_names"]
monitor.write_monitor_logger(0.1)

if e.run_training:
    train = list(dr.item_paths(dr.DatasetType.TRAINING))
    val = list(dr.item_paths(dr.DatasetType.VALIDATION))
    assert train and val and all(os.path.isfile(img) and os.path.isfile(ann) for img, ann in train + val)
    os.makedirs(e.output.models_dir, exist_ok=True)
    with open(os.path.join(e.output.models_dir, "model.txt"), "w") as f:
        f.write(f"trained on {len(train)} images\n")
    rw.write_training_result(["model.txt"], mAP=0.5, classAPs={c: 0.5 for c in classes})

candidates = [img for img, _ in dr.item_paths(dr.DatasetType.CANDIDATE)] if (e.run_mining or e.run_infer) else []
if e.run_mining:
    rw.write_mining_result([(img, float(i)) for i, img in enumerate(candidates)])
if e.run_infer:
    box = rw.Box(x=1, y=2, w=30, h=40)
    rw.write_infer_result({img: [rw.Annotation(class_name=classes[0], score=0.9, box=box)] for img in candidates})

monitor.write_monitor_logger(1.0)
print("ymir-exc job done")
