# The student alone on COCO2017:
# mmdet's Faster R-CNN R50 2x config (38.4 box AP in
# the mmdet zoo) with mmkd's runtime hooks (a NaN loss stops the run). The
# baseline of *_faster-rcnn_r101_r50_2x_coco.py.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    '../_base_/mmkd_runtime.py'
]
