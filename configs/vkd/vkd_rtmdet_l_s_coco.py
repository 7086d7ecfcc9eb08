# VkD on COCO2017.
# Teacher RTMDet-l (mmdet zoo), student RTMDet-s.
_base_ = [
    '../_base_/coco/rtmdet_l_s.py',
    '../_base_/recipes/vkd.py'
]
model = dict(distiller=_base_.recipe)
