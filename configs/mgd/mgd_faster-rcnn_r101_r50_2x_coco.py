# MGD (MMRazor baseline) on COCO2017.
# Teacher Faster R-CNN R101 2x (mmdet zoo), student Faster R-CNN R50 2x.
_base_ = [
    '../_base_/coco/faster-rcnn_r101_r50_2x.py',
    '../_base_/recipes/mgd.py'
]
# MMRazor has no Faster R-CNN MGD config: its RetinaNet values, untuned.
model = dict(distiller=_base_.recipe)
