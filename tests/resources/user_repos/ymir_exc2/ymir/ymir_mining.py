import sys

import cv2
from ymir_exc import dataset_reader as dr
from ymir_exc import result_writer as rw
from ymir_exc.env import DatasetType
from ymir_exc.util import YmirStage, get_merged_config, write_ymir_monitor_process

from ymir.ymir_util import load_mean_boxes


def main() -> int:
    cfg = get_merged_config()
    model = load_mean_boxes(cfg)
    items = [image for image, _ in dr.item_paths(DatasetType.CANDIDATE)]
    scores = []
    for idx, image in enumerate(items):
        gray = cv2.imread(image, cv2.IMREAD_GRAYSCALE)
        scores.append((image, float(gray.std()) / 128.0 + 0.001 * len(model)))
        write_ymir_monitor_process(cfg, task='mining', naive_stage_percent=(idx + 1) / len(items), stage=YmirStage.TASK)
    rw.write_mining_result(mining_result=scores)
    return 0


if __name__ == '__main__':
    sys.exit(main())
