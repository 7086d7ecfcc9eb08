# The student alone on COCO2017:
# mmdet's DINO 4-scale R50 12e config (49.0 box AP in the mmdet zoo) with
# mmkd's runtime hooks (a NaN loss stops the run). The baseline of
# *_dino_swin-l_r50_coco.py.
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../_base_/mmkd_runtime.py'
]
