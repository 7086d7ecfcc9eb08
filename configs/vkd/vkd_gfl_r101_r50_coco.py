# VkD on COCO2017.
# Teacher GFL R101 ms-2x (mmdet zoo), student GFL R50 1x.
_base_ = [
    '../_base_/coco/gfl_r101_r50.py',
    '../_base_/recipes/vkd.py'
]
model = dict(distiller=_base_.recipe)
