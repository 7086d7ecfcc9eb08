"""Student alone, VkD, SRD and MMRazor's PKD, CWD and MGD on the built-in
data: same teacher (the demo's), schedule and seeds; writes a markdown table
(mean ± std of mAP and AP_small over seeds, step time vs. the student) and a
PNG to WORK_DIR.

    python tools/compare.py --seeds 0 1 2
"""
import argparse
import os.path as osp

from mmkd.experiments.demo import (
    DEMO_METHODS,
    collect_comparison,
    comparison_table,
    project_path,
    run_comparison,
)
from mmkd.experiments.figures import plot_map


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--data-root', default='data/mmkd_shapes')
    parser.add_argument('--methods', nargs='+', choices=list(DEMO_METHODS),
                        default=['student', 'vkd', 'srd', 'pkd', 'cwd', 'mgd'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--cfg-options', nargs='+', default=[])
    parser.add_argument('--table-only', action='store_true',
                        help='only collect the finished runs into the table')
    args = parser.parse_args(argv)
    if args.table_only:
        runs = collect_comparison(args.work_dir, args.methods)
    else:
        runs = run_comparison(args.work_dir, args.data_root, args.methods,
                              args.seeds, cfg_options=args.cfg_options)
    table = comparison_table(runs)
    work_dir = project_path(args.work_dir)
    with open(osp.join(work_dir, 'comparison.md'), 'w') as f:
        f.write(table + '\n')
    plot_map({m: [r.get('coco/bbox_mAP', 0.0) for r in rs]
              for m, rs in runs.items()}, osp.join(work_dir, 'comparison.png'),
             title=f'bbox mAP, seeds {args.seeds}')
    print(table)


if __name__ == '__main__':
    main()
