"""The main job on the built-in data (``make demo``): generate the data,
train a teacher (once; reused afterwards), the student alone and the VkD
student with the same schedule and seed, evaluate each with COCO mAP and
print the table (also written to WORK_DIR/results.md) and write PNG
figures: mAP per run, loss curves, and features/detections side by side."""
import argparse

from mmkd_lab.demo import (
    DEMO_PAIRS,
    make_demo_figures,
    run_demo,
    write_report,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/mmkd_shapes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--methods', nargs='+', default=['student', 'vkd'],
                        choices=list(DEMO_PAIRS['retinanet']['methods']),
                        help="default: student vkd; any of the RetinaNet "
                        "pair's methods (configs/demo/*_shapes.py)")
    parser.add_argument('--retrain-teacher', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='KEY=VALUE overrides passed to every run')
    args = parser.parse_args(argv)
    results = run_demo(args.work_dir, args.data_root, args.seed, args.methods,
                       args.retrain_teacher, args.cfg_options)
    print(write_report(results, args.work_dir))
    for path in make_demo_figures(results, args.work_dir, args.data_root):
        print(f'figure: {path}')


if __name__ == '__main__':
    main()
