# The student alone on COCO2017:
# mmdet's RetinaNet R18 1x config (31.7 box AP in
# the mmdet zoo) with mmkd's runtime hooks (a NaN loss stops the run). The
# baseline of *_retinanet_r50_r18_coco.py.
_base_ = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    '../_base_/mmkd_runtime.py'
]
