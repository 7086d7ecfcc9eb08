# The student alone on COCO2017: mmdet's Faster R-CNN R50 2x config, unchanged
# (38.4 box AP in the mmdet zoo). The baseline of
# *_faster-rcnn_r101_r50_2x_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'
