"""VkD's step with other projectors, beside VkD, SRD and PKD, in one
interleaved benchmark run (RetinaNet R50 -> R18):

    python tools/analysis/projector_variants.py 800
    python tools/analysis/projector_variants.py 64 --batch 1 --repeats 1

``vkd_linear``: VkD's loss with a plain linear projector (no bias);
``vkd_mexp``: VkD with the matrix_exp map instead of cayley.
"""
import argparse

from mmkd_lab import benchmark as B

METHODS = ('student', 'teacher_fwd', 'vkd', 'vkd_linear', 'vkd_mexp', 'srd',
           'pkd')


def add_variants() -> None:
    vkd = B.RECIPES['vkd']
    B.RECIPES['vkd_linear'] = dict(
        connector=dict(type='ProjectorConnector', orthogonal=False,
                       bias=False),
        loss=vkd['loss'])
    B.RECIPES['vkd_mexp'] = dict(
        connector=dict(type='ProjectorConnector', orthogonal=True,
                       orthogonal_map='matrix_exp'),
        loss=vkd['loss'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('size', type=int, nargs='?', default=800)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    add_variants()
    res = B.run_benchmark('retinanet_r50_r18', (args.size, args.size),
                          args.batch, METHODS, warmup=args.warmup,
                          repeats=args.repeats)
    print(B.format_table(
        res, f'retinanet_r50_r18, {args.size}x{args.size}, batch '
        f'{args.batch}, median of {args.repeats} after {args.warmup} '
        'warm-up, order rotated'))
    return res


if __name__ == '__main__':
    main()
