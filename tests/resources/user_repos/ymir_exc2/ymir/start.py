# A YMIR 2.x executor, laid out the way the yolov5/yolov7/detectron2-era executors were: ymir/start.py
# run from the repository root, importing its helpers as `ymir.*` (the image's PYTHONPATH=.), written
# against the executor SDK 2.x (not listed: the image carried it), with easydict and tensorboardX
# (the SDK's own dependencies) imported without being listed either.
import logging
import subprocess
import sys

from easydict import EasyDict as edict
from ymir_exc import monitor
from ymir_exc.util import YmirStage, get_merged_config, write_ymir_monitor_process

from ymir.ymir_util import load_mean_boxes


def start(cfg: edict) -> int:
    logging.info(f'merged config: {cfg}')
    if cfg.ymir.run_training:
        subprocess.run([sys.executable, 'ymir/ymir_training.py'], check=True)
    else:
        load_mean_boxes(cfg)  # fail early when the model is missing
        if cfg.ymir.run_mining:
            subprocess.run([sys.executable, 'ymir/ymir_mining.py'], check=True)
        if cfg.ymir.run_infer:
            subprocess.run([sys.executable, 'ymir/ymir_infer.py'], check=True)
    monitor.write_monitor_logger(percent=1.0)
    return 0


if __name__ == '__main__':
    logging.basicConfig(stream=sys.stdout, format='%(levelname)-8s: [%(asctime)s] %(message)s', level=logging.INFO)
    cfg = get_merged_config()
    write_ymir_monitor_process(cfg, task='training' if cfg.ymir.run_training else 'mining',
                               naive_stage_percent=0.0, stage=YmirStage.PREPROCESS)
    sys.exit(start(cfg))
