"""Evaluate a checkpoint: MMDetection's tools/test.py options.

    python tools/test.py CONFIG CHECKPOINT [--show-dir DIR] [--out FILE.pkl]
"""
import argparse

# Importing mmkd applies its compatibility layer and registers its modules.
from mmkd.apis import add_common_args, parse, run_tool, test


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (safe-loaded)')
    parser.add_argument('--show-dir',
                        help='write images with drawn detections here')
    parser.add_argument('--out', help='dump raw detections to this .pkl')
    add_common_args(parser)
    args = parse(parser, argv)
    test(args.config, args.checkpoint, work_dir=args.work_dir,
         show_dir=args.show_dir, out=args.out, cfg_options=args.cfg_options,
         launcher=args.launcher)


if __name__ == '__main__':
    run_tool(main)
