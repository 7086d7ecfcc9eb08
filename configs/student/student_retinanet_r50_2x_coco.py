# The student alone on COCO2017:
# mmdet's RetinaNet R50 2x config (37.4 box AP in
# the mmdet zoo) with mmkd's runtime hooks (a NaN loss stops the run). The
# baseline of *_retinanet_r101_r50_2x_coco.py.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    '../_base_/mmkd_runtime.py'
]
