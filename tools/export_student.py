"""Export the distilled student for plain MMDetection: no teacher, no
projectors, ``architecture.`` prefix removed, plus the student's config.

    python tools/export_student.py CONFIG CHECKPOINT OUT.pth
    # writes OUT.pth and OUT.py; then, with MMDetection alone:
    #   init_detector('OUT.py', 'OUT.pth')
"""
import argparse

# Importing mmkd applies its compatibility layer (safe checkpoint loading).
from mmkd.export import export_student


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the distill config of the run')
    parser.add_argument('checkpoint', help="the distiller's checkpoint")
    parser.add_argument('out', help='student checkpoint to write (.pth); '
                        'its config goes next to it as .py')
    args = parser.parse_args(argv)
    ckpt, cfg = export_student(args.config, args.checkpoint, args.out)
    print(f'student checkpoint: {ckpt}\nstudent config:     {cfg}')


if __name__ == '__main__':
    main()
