"""Distillation step time against the floor (student step + teacher
backbone/neck forward), all methods interleaved in one process.

    python tools/benchmark.py --setting demo --size 128 128 --batch 8
    python tools/benchmark.py --setting retinanet_r50_r18 --size 512 512
    python tools/benchmark.py --setting faster-rcnn_r101_r50 --size 512 512
    python tools/benchmark.py --setting rtmdet_l_s --size 640 640 --batch 2
    python tools/benchmark.py --setting gfl_r101_r50 --size 800 800 --batch 2
    python tools/benchmark.py --setting dino_demo --size 128 128 --batch 8
    python tools/benchmark.py --setting dino_swin-l_r50 --size 800 800 \
        --batch 2
    python tools/benchmark.py --setting demo --maps   # orthogonal maps only
"""
import argparse

from mmkd_lab.benchmark import (
    DETR_METHODS,
    METHODS,
    format_maps,
    format_table,
    run_benchmark,
    setting_models,
    time_orthogonal_maps,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--setting', default='demo')
    parser.add_argument('--size', type=int, nargs=2, default=[128, 128],
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--methods', nargs='+',
                        choices=list(METHODS + DETR_METHODS[2:]),
                        help='default: every method of the setting; a DETR '
                        f'setting (dino_*) has {", ".join(DETR_METHODS)}')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default=None, help='cpu or cuda')
    parser.add_argument('--teacher-dtype', default='float32',
                        choices=['float32', 'bfloat16', 'float16'])
    parser.add_argument('--maps', action='store_true',
                        help="time only the orthogonal maps for the setting's "
                        'channels (VkD projector parametrisation)')
    args = parser.parse_args(argv)
    if args.maps:
        _, _, c_s, c_t = setting_models(args.setting)
        times = time_orthogonal_maps(c_s, c_t, args.warmup,
                                     max(args.repeats, 10), args.device)
        print(format_maps(times, c_s, c_t))
        return
    results = run_benchmark(args.setting, tuple(args.size), args.batch,
                            args.methods, args.warmup, args.repeats,
                            args.device, args.teacher_dtype)
    title = (f'{args.setting}, {args.size[0]}x{args.size[1]}, batch '
             f'{args.batch}, teacher {args.teacher_dtype}, median of '
             f'{args.repeats} after {args.warmup} warm-up')
    print(format_table(results, title))


if __name__ == '__main__':
    main()
