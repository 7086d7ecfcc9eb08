# PKD (MMRazor baseline) on COCO2017.
# Teacher RTMDet-l (mmdet zoo), student RTMDet-s.
_base_ = [
    '../_base_/coco/rtmdet_l_s.py',
    '../_base_/recipes/pkd.py'
]
# PKD compares maps of equal channels: the student's 128 go through
# MMRazor's 1x1 ConvModuleConnector to the teacher's 256 (no norm, no act).
model = dict(
    distiller=dict(
        _base_.recipe,
        connector=dict(
            type='ConvModuleConnector', kernel_size=1, norm_cfg=None,
            act_cfg=None)))
