import logging
import sys

from tensorboardX import SummaryWriter
from ymir_exc import dataset_reader as dr
from ymir_exc.env import DatasetType
from ymir_exc.util import YmirStage, get_merged_config, write_ymir_monitor_process, write_ymir_training_result

from ymir.ymir_util import mean_boxes, save_mean_boxes


def main() -> int:
    cfg = get_merged_config()
    epochs = int(cfg.param.epochs)
    train = list(dr.item_paths(DatasetType.TRAINING))
    writer = SummaryWriter(log_dir=cfg.ymir.output.tensorboard_dir)
    for epoch in range(1, epochs + 1):
        model = mean_boxes(cfg, train[:epoch * len(train) // epochs])
        map50 = round(0.2 + 0.1 * epoch / epochs, 4)
        writer.add_scalar('val/mAP50', map50, epoch)
        path = save_mean_boxes(cfg, model, epoch)
        write_ymir_training_result(cfg, map50=map50, files=[path], id=f'epoch_{epoch}',
                                   evaluation_result={'mAP': map50})
        write_ymir_monitor_process(cfg, task='training', naive_stage_percent=epoch / epochs, stage=YmirStage.TASK)
    writer.close()
    logging.info(f'trained {epochs} epochs on {len(train)} images')
    return 0


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
