# CWD (MMRazor baseline) on COCO2017.
# Teacher RetinaNet R50 1x (mmdet zoo), student RetinaNet R18 1x.
_base_ = [
    '../_base_/coco/retinanet_r50_r18.py',
    '../_base_/recipes/cwd.py'
]
model = dict(distiller=_base_.recipe)
