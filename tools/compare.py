"""Methods on the built-in data against one pair's teacher, same schedule
and seeds; writes a markdown table (mean ± std of mAP and AP_small over
seeds, the mAP difference from the student alone with the same seed,
share of the teacher-student gap closed, step time vs. the student) and a
PNG to WORK_DIR. Pairs: ``retinanet`` (the demo's: student alone, VkD, SRD
and MMRazor's PKD, CWD and MGD) and ``dino`` (docs/detr.md: the DINO
student alone, PKD, VkD tokens, VkD tokens + queries with the published
query rule and with mmkd's student-content rule).

    python tools/compare.py --seeds 0 1 2
    python tools/compare.py --pair dino --seeds 0 1 \
        --work-dir work_dirs/dino_compare
    python tools/compare.py --seeds 0 1 --dry-run   # list the runs only
"""
import argparse
import os.path as osp

from mmkd_lab.demo import (
    DEMO_METHODS,
    DEMO_PAIRS,
    collect_comparison,
    comparison_table,
    last_scalars,
    plan_comparison,
    project_path,
    run_comparison,
)
from mmkd_lab.figures import plot_map


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--data-root', default='data/mmkd_shapes')
    parser.add_argument('--pair', choices=list(DEMO_PAIRS),
                        default='retinanet',
                        help='whose teacher (and default methods)')
    parser.add_argument('--methods', nargs='+', choices=list(DEMO_METHODS),
                        help="default: the pair's")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--cfg-options', nargs='+', default=[])
    parser.add_argument('--paired-with', choices=list(DEMO_METHODS),
                        metavar='METHOD',
                        help='difference column against this method '
                        '(same seed) instead of the student alone')
    parser.add_argument('--table-only', action='store_true',
                        help='only collect the finished runs into the table')
    parser.add_argument('--dry-run', action='store_true',
                        help='list the runs (configs, work dirs, options) '
                        'and check that each config loads; train nothing')
    args = parser.parse_args(argv)
    pair = DEMO_PAIRS[args.pair]
    methods = args.methods or list(pair['methods'])
    if args.dry_run:
        for run in plan_comparison(args.work_dir, args.data_root, methods,
                                   args.seeds, pair['work_dir'],
                                   pair['teacher'], args.cfg_options):
            state = 'done' if run['done'] else 'to train'
            print(f"{run['run']}: {state}, {run['config']} -> "
                  f"{run['work_dir']}")
        return
    if args.table_only:
        runs = collect_comparison(args.work_dir, methods)
    else:
        runs = run_comparison(args.work_dir, args.data_root, methods,
                              args.seeds, cfg_options=args.cfg_options,
                              teacher_work_dir=pair['work_dir'],
                              teacher_config=pair['teacher'])
    try:  # no teacher run there: no gap column
        teacher = last_scalars(osp.join(project_path(pair['work_dir']),
                                        'teacher')).get('coco/bbox_mAP')
    except FileNotFoundError:
        teacher = None
    table = comparison_table(runs, teacher, args.paired_with)
    work_dir = project_path(args.work_dir)
    with open(osp.join(work_dir, 'comparison.md'), 'w') as f:
        f.write(table + '\n')
    plot_map({m: [r.get('coco/bbox_mAP', 0.0) for r in rs]
              for m, rs in runs.items()}, osp.join(work_dir, 'comparison.png'),
             title=f'bbox mAP, seeds {args.seeds}')
    print(table)


if __name__ == '__main__':
    main()
