"""Write one distillation config from a teacher, its checkpoint, a student
and a method (also ``mmkd config``).

    python tools/make_distill_config.py --teacher my_teacher.py \
        --teacher-ckpt work_dirs/my_teacher/epoch_12.pth \
        --student my_student.py --method vkd --out my_vkd.py

Both detectors are built and their necks probed on a dummy image; levels
are paired by stride, channels set, classes and the checkpoint checked
(docs/your_own_detector.md).
"""
import argparse

from mmkd.apis import run_tool
from mmkd.apis.distill_config import METHODS, write_distill_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher', required=True,
                        help="the teacher's config (a path or mmdet::name)")
    parser.add_argument('--teacher-ckpt', required=True,
                        help="the teacher's checkpoint (a file or a URL)")
    parser.add_argument('--student', required=True,
                        help="the student's config (its data, schedule and "
                        'runtime are the distillation run\'s)')
    parser.add_argument('--method', required=True, choices=METHODS)
    parser.add_argument('--out', required=True,
                        help='the config to write (not replaced unless '
                        '--force)')
    parser.add_argument('--probe-size', type=int, default=256,
                        help='side of the dummy image the necks are probed '
                        'on (a multiple of 128; default %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='replace --out if it exists')
    args = parser.parse_args(argv)
    found = write_distill_config(args.teacher, args.teacher_ckpt,
                                 args.student, args.method, args.out,
                                 args.probe_size, args.force)
    print(f"wrote {found['path']}: student levels {found['levels']} <- "
          f"teacher levels {found['teacher_levels']}, channels "
          f"{found['student_channels']} -> {found['teacher_channels']}, "
          f"{len(found['classes'])} classes")


if __name__ == '__main__':
    run_tool(main)
