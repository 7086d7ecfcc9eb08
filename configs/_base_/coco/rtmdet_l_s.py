# Teacher RTMDet-l (mmdet zoo, 51.3 box AP), student RTMDet-s (44.5 box AP
# alone), COCO2017, 300 epochs: the pair of mmyolo's RTMDet distillation
# results (m -> s 44.6 -> 45.7 there). The student's mmdet config gives the
# data (data/coco/), the schedule, the runtime and RTMDet's hooks; a recipe
# (../recipes/) adds the connector and the loss.
#
# RTMDet's neck (CSPNeXtPAFPN) gives 3 levels (strides 8, 16, 32) of
# 128 channels for s and 256 for l: every projector maps 128 -> 256, a
# student narrower than its teacher.
#
# mmdet's RTMDet configs define custom_hooks (EMA, pipeline switch), so
# ../mmkd_runtime.py cannot be a second base (MMEngine refuses a key in two
# bases): its two settings are stated here.
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'

# mmdet's rtmdet_s model (CSPNeXt-s ImageNet init included).
student = _base_.model

# mmdet's rtmdet_l_8xb32-300e_coco.py model, named by its config (built by
# MMRazor's model builder, see retinanet_r50_r18.py). Its ImageNet init is
# not applied: all its weights come from teacher_ckpt.
teacher = dict(
    cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py',
    pretrained=False)

# mmdet metafile: rtmdet_l_8xb32-300e_coco (box AP 51.3).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='StrictFpnTeacherDistill',  # teacher: backbone + neck, strict ckpt
    architecture=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2),  # strides 8, 16, 32
        student_channels=128,
        teacher_channels=256))
find_unused_parameters = True

# mmkd's runtime (../mmkd_runtime.py) beside RTMDet's own hooks. Distillation
# stops with the strong augmentation, for the last 20 no-mosaic epochs, as
# mmyolo's RTMDet distillation does (MMRazor's StopDistillHook).
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = _base_.custom_hooks + [
    dict(type='AtomicCheckpointHook'),
    dict(type='FiniteLossHook'),
    dict(type='DropFrozenTeacherHook'),
    dict(type='DistillLossRatioHook'),
    dict(type='mmrazor.StopDistillHook', stop_epoch=280),
]
