"""Distillation step time against the floor (student step + teacher
backbone/neck forward), all methods interleaved in one process.

    python tools/benchmark.py --setting demo --size 128 128 --batch 8
    python tools/benchmark.py --setting retinanet_r50_r18 --size 512 512
    python tools/benchmark.py --setting faster-rcnn_r101_r50 --size 512 512
"""
import argparse

from mmkd.benchmark import METHODS, format_table, run_benchmark


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--setting', default='demo')
    parser.add_argument('--size', type=int, nargs=2, default=[128, 128],
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default=None, help='cpu or cuda')
    parser.add_argument('--teacher-dtype', default='float32',
                        choices=['float32', 'bfloat16', 'float16'])
    args = parser.parse_args(argv)
    results = run_benchmark(args.setting, tuple(args.size), args.batch,
                            args.methods, args.warmup, args.repeats,
                            args.device, args.teacher_dtype)
    title = (f'{args.setting}, {args.size[0]}x{args.size[1]}, batch '
             f'{args.batch}, teacher {args.teacher_dtype}, median of '
             f'{args.repeats} after {args.warmup} warm-up')
    print(format_table(results, title))


if __name__ == '__main__':
    main()
