"""Write one distillation config for your own teacher and student.

    python tools/make_distill_config.py --teacher my_teacher.py \
        --teacher-ckpt work_dirs/my_teacher/epoch_12.pth \
        --student my_student.py --method vkd --out configs_mine/vkd_mine.py
    mmkd config --teacher ...    (the same options)

Necks probed, levels paired by stride, classes and checkpoint checked, the
config built once before it is written (mmkd.apis.distill_config).
"""
import argparse

from mmkd.apis import METHODS, run_tool, write_distill_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher', required=True, help="the teacher's "
                        'config: a path or an mmdet::/mmkd:: name')
    parser.add_argument('--teacher-ckpt', required=True, help="the "
                        "teacher's checkpoint: a file (loaded strictly "
                        'now) or an http(s) URL (checked when training)')
    parser.add_argument('--student', required=True, help="the student's "
                        'config (its data, schedule and runtime are kept)')
    parser.add_argument('--method', required=True, choices=METHODS)
    parser.add_argument('--out', required=True, help='the config to write')
    parser.add_argument('--force', action='store_true',
                        help='replace --out if it exists')
    parser.add_argument('--probe-size', type=int, nargs='+',
                        default=[320, 320], metavar='N', help='H [W] of the '
                        'zero image the necks are probed on (default 320)')
    args = parser.parse_args(argv)
    plan = write_distill_config(args.teacher, args.teacher_ckpt,
                                args.student, args.method, args.out,
                                force=args.force, probe_size=args.probe_size)
    print(plan.summary())


if __name__ == '__main__':
    run_tool(main)
