"""Train a detector or a distiller: MMDetection's tools/train.py options.

    python tools/train.py configs/vkd/vkd_retinanet_r50_r18_coco.py
    python tools/train.py CONFIG --resume            # latest in work dir
    python tools/train.py CONFIG --resume PATH.pth --amp
    python tools/train.py CONFIG --skip-teacher-check

Before a distiller's first step the loaded teacher is evaluated on the first
validation batches; the run stops when its mAP is near zero (a wrong
checkpoint, class order or dataset). The config's optional
``teacher_check = dict(batches=5, min_map=0.01)`` sets how.
"""
import argparse

# Importing mmkd applies its compatibility layer and registers its modules.
from mmkd.apis import add_common_args, parse, run_tool, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume from CHECKPOINT, or from the latest checkpoint in the '
        'work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 on CUDA, bf16 on CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--skip-teacher-check', action='store_true',
        help="do not evaluate the teacher before distilling (by default a "
        "distiller's teacher is evaluated on the first validation batches "
        'and the run stops when its mAP is near zero)')
    add_common_args(parser)
    args = parse(parser, argv)
    train(args.config, work_dir=args.work_dir, resume=args.resume,
          amp=args.amp, auto_scale_lr=args.auto_scale_lr,
          cfg_options=args.cfg_options, launcher=args.launcher,
          teacher_check=not args.skip_teacher_check)


if __name__ == '__main__':
    run_tool(main)
