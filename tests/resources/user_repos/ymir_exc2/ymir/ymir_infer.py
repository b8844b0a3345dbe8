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
    conf = float(cfg.param.get('conf_threshold', 0.5))
    result = {}
    items = [image for image, _ in dr.item_paths(DatasetType.CANDIDATE)]
    for idx, image in enumerate(items):
        height, width = cv2.imread(image).shape[:2]
        result[image] = [
            rw.Annotation(class_name=name, score=conf,
                          box=rw.Box(x=int(cx * width), y=int(cy * height), w=max(1, int(bw * width)),
                                     h=max(1, int(bh * height))))
            for name, (cx, cy, bw, bh) in model.items()
        ]
        write_ymir_monitor_process(cfg, task='infer', naive_stage_percent=(idx + 1) / len(items), stage=YmirStage.TASK)
    rw.write_infer_result(infer_result=result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
