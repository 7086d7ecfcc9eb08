# Teacher RetinaNet R101 2x (mmdet zoo, 38.9 box AP), student RetinaNet R50 2x
# (37.4 box AP alone), COCO2017: the pair of CrossKD's RetinaNet result (39.7)
# and the student of MMRazor's PKD / MGD results (X101 teacher). The student's
# mmdet config gives the data (data/coco/), the 2x schedule and the runtime.
# The pair is distilled on every FPN level; a recipe (../recipes/) adds the
# connector and the loss.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    '../mmkd_runtime.py'
]

# mmdet's retinanet_r50_fpn_2x_coco.py model (torchvision://resnet50 init);
# `_base_.model` comes with _scope_='mmdet' (see retinanet_r50_r18.py).
student = _base_.model

# mmdet's retinanet_r101_fpn_2x_coco.py model, named by its config (built
# by MMRazor's model builder, see retinanet_r50_r18.py). Its ImageNet init
# is not applied: all its weights come from teacher_ckpt.
teacher = dict(
    cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    pretrained=False)

# mmdet metafile: retinanet_r101_fpn_2x_coco (box AP 38.9).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'  # noqa: E501

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
