# Teacher DINO 5-scale Swin-L 12e (mmdet zoo, 57.2 box AP), student DINO
# 4-scale R50 12e (49.0 box AP alone), COCO2017. The student's mmdet config
# gives the data (data/coco/), the 12-epoch schedule and the runtime; a
# recipe (../recipes/) adds the connector and the loss, the method config
# chooses the terms (docs/detr.md).
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../mmkd_runtime.py'
]

# mmdet's dino-4scale_r50_8xb2-12e_coco.py model (torchvision://resnet50).
student = _base_.model

# mmdet's dino-5scale_swin-l_8xb2-12e_coco.py model (Swin-L backbone, 5
# scales), named by its config (built by MMRazor's model builder, see
# retinanet_r50_r18.py). Its Swin-L ImageNet-22k init is not applied: all
# its weights come from teacher_ckpt.
teacher = dict(
    cfg_path='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
    pretrained=False)

# mmdet metafile: dino-5scale_swin-l_8xb2-12e_coco (box AP 57.2).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/dino/dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth'  # noqa: E501

# Scales: the student's 4 (strides 8, 16, 32, 64) against the teacher's 5
# (4, 8, 16, 32, 64), paired by stride: teacher_levels skips the teacher's
# stride-4 scale. 256-dim tokens on both sides. Queries: all 6 decoder
# layers pooled into one term, on the distillation points (the teacher's 900
# queries, content query and box, through both decoders: DinoTeacherDistill,
# docs/detr.md).
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DinoTeacherDistill',
    architecture=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt,
    query_input='teacher',  # KD-DETR's distillation points
    probe='group',  # one decoder call: the points as a masked query group
    distiller=dict(
        type='DetrDistiller',
        student_channels=256,
        teacher_channels=256,
        neck=dict(levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4)),
        encoder=dict(levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4)),
        queries=dict(levels=(0, 1, 2, 3, 4, 5), pool=True)))
find_unused_parameters = True
