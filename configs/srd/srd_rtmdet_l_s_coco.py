# SRD on COCO2017.
# Teacher RTMDet-l (mmdet zoo), student RTMDet-s.
_base_ = [
    '../_base_/coco/rtmdet_l_s.py',
    '../_base_/recipes/srd.py'
]
model = dict(distiller=_base_.recipe)
