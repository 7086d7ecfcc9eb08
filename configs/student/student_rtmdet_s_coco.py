# The student alone on COCO2017:
# mmdet's RTMDet-s config (44.5 box AP in the mmdet zoo) with mmkd's runtime
# hooks (a NaN loss stops the run). The baseline of *_rtmdet_l_s_coco.py.
# RTMDet's config has custom_hooks of its own, so ../_base_/mmkd_runtime.py
# cannot be a second base: its settings are added to RTMDet's here.
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = _base_.custom_hooks + [
    dict(type='FiniteLossHook'),
    dict(type='DropFrozenTeacherHook'),
    dict(type='DistillLossRatioHook'),
]
