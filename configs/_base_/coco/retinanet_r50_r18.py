# Teacher RetinaNet R50 1x (mmdet zoo, 36.5 box AP), student RetinaNet R18 1x
# (31.7 box AP alone), COCO2017. The student's mmdet config gives the data
# (data/coco/), the 1x schedule and the runtime. The pair is distilled on
# every FPN level; a recipe (../recipes/) adds the connector and the loss.
_base_ = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    '../mmkd_runtime.py'
]

# mmdet's retinanet_r18_fpn_1x_coco.py model, ImageNet init included
# (torchvision://resnet18). Accessed as `_base_.model`, MMEngine gives it
# _scope_='mmdet', which MMRazor needs to build it from the mmrazor scope.
# Referenced through the base rather than by cfg_path: that config gives the
# data, schedule and runtime too, and `--cfg-options model.architecture.*`
# and the student export read the student as a model config.
student = _base_.model

# mmdet's retinanet_r50_fpn_1x_coco.py model, named by its config as
# MMRazor's distillation configs name a teacher (MMRazor's model builder
# builds it; MMEngine refuses two full mmdet configs as bases of one config).
# Its ImageNet init is not applied: all its weights come from teacher_ckpt.
# Keys given beside cfg_path (model.teacher.bbox_head.num_classes=3 for a
# teacher of your own) are merged into that config's model by mmkd; a whole
# model config replaces the reference with _delete_=True.
teacher = dict(
    cfg_path='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    pretrained=False)

# mmdet metafile: retinanet_r50_fpn_1x_coco (box AP 36.5).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r50_fpn_1x_coco/retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='StrictFpnTeacherDistill',  # teacher: backbone + neck, strict ckpt
    architecture=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P3-P7
        student_channels=256,
        teacher_channels=256))
# As in MMRazor's distillation configs: DDP must accept parameters that get
# no gradient in a step (the connectors, once distillation is stopped).
find_unused_parameters = True
