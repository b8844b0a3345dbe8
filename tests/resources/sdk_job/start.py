"""The same job written against live_code.sdk: reads boxes, writes the format of the task's protocol."""

import os

from live_code import contract, sdk

env = sdk.read_env()
config = sdk.read_config()
classes = sdk.get_list(config, "class_names", [])
sdk.write_progress(0.1)

if sdk.TaskKind.TRAINING in env.kinds:
    items = list(sdk.iter_items(sdk.Split.TRAINING)) + list(sdk.iter_items(sdk.Split.VALIDATION))
    assert items and all(item.boxes for item in items)
    stage_dir = os.path.join(env.output.models_dir, "last")
    os.makedirs(stage_dir, exist_ok=True)
    # stage sub-directories exist from protocol 1.1.0 (YMIR 2.0); before, model files sit flat in models/
    path = os.path.join(
        stage_dir if contract.allows_stage_dirs(env.protocol_version) else env.output.models_dir, "model.txt"
    )
    with open(path, "w") as f:
        f.write(f"{sum(len(i.boxes) for i in items)} boxes\n")
    sdk.write_model_stage("last", ["model.txt"], 0.5)

candidates = [i.image_path for i in sdk.iter_items(sdk.Split.CANDIDATE)] if env.kinds - {sdk.TaskKind.TRAINING} else []
if sdk.TaskKind.MINING in env.kinds:
    sdk.write_mining_result([(img, float(i)) for i, img in enumerate(candidates)])
if sdk.TaskKind.INFER in env.kinds:
    det = sdk.Detection(class_name=classes[0], score=0.9, x=1, y=2, w=30, h=40)
    sdk.write_infer_result({img: [det] for img in candidates})

sdk.write_progress(1.0)
print("sdk job done")
