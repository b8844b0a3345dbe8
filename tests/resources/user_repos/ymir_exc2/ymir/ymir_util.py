"""Helpers shared by the task scripts: annotations, the mean-box model."""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

import cv2
from easydict import EasyDict as edict
from ymir_exc.util import get_weight_files

MODEL_FILE = 'mean_boxes.json'


def read_boxes(annotation_path: str, class_names: List[str]) -> List[Tuple[str, int, int, int, int]]:
    """(class, x, y, w, h) from a YMIR voc xml or ark txt annotation."""
    boxes = []
    if annotation_path.endswith('.xml'):
        root = ET.parse(annotation_path).getroot()
        for obj in root.iter('object'):
            b = obj.find('bndbox')
            x1, y1, x2, y2 = [int(float(b.find(k).text)) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
            boxes.append((obj.find('name').text, x1, y1, x2 - x1 + 1, y2 - y1 + 1))
    elif annotation_path:
        with open(annotation_path) as f:
            for line in f:
                parts = [p.strip() for p in line.split(',')]
                if len(parts) >= 5:
                    x1, y1, x2, y2 = [int(float(v)) for v in parts[1:5]]
                    boxes.append((class_names[int(parts[0])], x1, y1, x2 - x1 + 1, y2 - y1 + 1))
    return boxes


def mean_boxes(cfg: edict, items: List[Tuple[str, str]]) -> Dict[str, List[float]]:
    sums = {name: [0.0] * 5 for name in cfg.param.class_names}
    for image_path, annotation_path in items:
        height, width = cv2.imread(image_path).shape[:2]
        for name, x, y, w, h in read_boxes(annotation_path, cfg.param.class_names):
            s = sums[name]
            for i, v in enumerate((1, x / width, y / height, w / width, h / height)):
                s[i] += v
    return {name: [v / s[0] for v in s[1:]] if s[0] else [0.25, 0.25, 0.5, 0.5] for name, s in sums.items()}


def save_mean_boxes(cfg: edict, model: Dict[str, List[float]], epoch: int) -> str:
    path = osp.join(cfg.ymir.output.models_dir, f'epoch_{epoch}_{MODEL_FILE}')
    os.makedirs(cfg.ymir.output.models_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump({'class_names': list(cfg.param.class_names), 'boxes': model}, f)
    return path


def load_mean_boxes(cfg: edict) -> Dict[str, List[float]]:
    files = get_weight_files(cfg, suffix=('.json',))
    if not files:
        raise FileNotFoundError(f'no *{MODEL_FILE} in {cfg.param.get("model_params_path")}')
    with open(files[0]) as f:
        return json.load(f)['boxes']
