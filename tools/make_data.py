"""Generate mmkd's built-in detection data (COCO format) if not present.

    python tools/make_data.py [--data-root data/mmkd_shapes] [--train 1200]
"""
import argparse

from mmkd_lab.data import ensure_dataset
from mmkd_lab.data.synthetic import DEFAULT_SPLITS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/mmkd_shapes')
    parser.add_argument('--train', type=int, default=DEFAULT_SPLITS['train'])
    parser.add_argument('--val', type=int, default=DEFAULT_SPLITS['val'])
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    root = ensure_dataset(args.data_root, args.train, args.val, args.seed)
    print(f'built-in data ready in {root}')


if __name__ == '__main__':
    main()
