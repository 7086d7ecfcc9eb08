# Teacher GFL R101 multi-scale 2x (mmdet zoo, 44.7 box AP), student GFL R50
# 1x (40.2 box AP alone), COCO2017: the pair of CrossKD's GFL result
# (40.2 -> 43.7). The student's mmdet config gives the data (data/coco/), the
# 1x schedule and the runtime. The pair is distilled on every FPN level; a
# recipe (../recipes/) adds the connector and the loss.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    '../mmkd_runtime.py'
]

# mmdet's gfl_r50_fpn_1x_coco.py model (torchvision://resnet50 init).
student = _base_.model

# mmdet's gfl_r101_fpn_ms-2x_coco.py model (its multi-scale training is
# data, not model), named by its config (built by MMRazor's model builder,
# see retinanet_r50_r18.py). Its ImageNet init is not applied: all its
# weights come from teacher_ckpt.
teacher = dict(
    cfg_path='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    pretrained=False)

# mmdet metafile: gfl_r101_fpn_ms-2x_coco (box AP 44.7).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501

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
