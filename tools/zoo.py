"""Regenerate the model-zoo tables from the method metafiles.

    python tools/zoo.py            # rewrite the tables that changed
    python tools/zoo.py --check    # exit 1, listing the stale pages

Each result is written once, in configs/<method>/metafile.yml; the results
table of each method README and the zoo table of docs/model_zoo.md (the
zoo's one home) are generated between their ``<!-- zoo:start -->`` and
``<!-- zoo:end -->`` lines (see mmkd/zoo.py).
"""
import argparse
import os.path as osp
import sys

from mmkd.zoo import ZooError, stale_pages, write_pages

# The checkout (or, installed, mmkd/.mim: its configs only).
ROOT = osp.dirname(osp.dirname(osp.realpath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 if a page is stale')
    parser.add_argument('--root', default=ROOT, help='the folder with '
                        'model-index.yml (default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_pages(args.root)
            if stale:
                sys.exit('zoo tables out of date in: ' + ', '.join(stale) +
                         '\nrun `python tools/zoo.py` and commit the pages')
            print('zoo tables are current')
        else:
            changed = write_pages(args.root)
            print('rewrote: ' + ', '.join(changed) if changed
                  else 'zoo tables are current')
    except ZooError as e:
        sys.exit(f'mmkd zoo: {e}')


if __name__ == '__main__':
    main()
