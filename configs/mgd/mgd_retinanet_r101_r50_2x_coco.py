# MGD (MMRazor baseline) on COCO2017.
# Teacher RetinaNet R101 2x (mmdet zoo), student RetinaNet R50 2x.
_base_ = [
    '../_base_/coco/retinanet_r101_r50_2x.py',
    '../_base_/recipes/mgd.py'
]
model = dict(distiller=_base_.recipe)
