# The student alone on COCO2017:
# mmdet's GFL R50 1x config (40.2 box AP in the mmdet zoo) with mmkd's
# runtime hooks (a NaN loss stops the run). The baseline of
# *_gfl_r101_r50_coco.py.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    '../_base_/mmkd_runtime.py'
]
