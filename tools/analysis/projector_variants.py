"""VkD's step with other projectors, beside VkD, SRD and PKD, in one
interleaved benchmark run (RetinaNet R50 -> R18, batch 2):

    python tools/analysis/projector_variants.py 800

``vkd_linear``: VkD's loss with a plain linear projector (no bias);
``vkd_mexp``: VkD with the matrix_exp map instead of cayley.
"""
import sys

from mmkd.experiments import benchmark as B

vkd = B.RECIPES['vkd']
B.RECIPES['vkd_linear'] = dict(
    connector=dict(type='ProjectorConnector', orthogonal=False, bias=False),
    loss=vkd['loss'])
B.RECIPES['vkd_mexp'] = dict(
    connector=dict(type='ProjectorConnector', orthogonal=True,
                   orthogonal_map='matrix_exp'),
    loss=vkd['loss'])
size = int(sys.argv[1]) if len(sys.argv) > 1 else 800
res = B.run_benchmark('retinanet_r50_r18', (size, size), 2,
                      ('student', 'teacher_fwd', 'vkd', 'vkd_linear',
                       'vkd_mexp', 'srd', 'pkd'), warmup=1, repeats=3)
print(B.format_table(res, f'retinanet_r50_r18, {size}x{size}, batch 2, '
                     'median of 3 after 1 warm-up, order rotated'))
