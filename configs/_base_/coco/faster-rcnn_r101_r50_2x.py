# Teacher Faster R-CNN R101 2x (mmdet zoo, 39.8 box AP), student Faster R-CNN
# R50 2x (38.4 box AP alone), COCO2017. 2x for the student too, to match
# MMRazor's PKD anchor (R101 2x -> R50 2x, 40.3); MMRazor's FBKD anchor (39.3)
# is 1x with the R101 1x teacher and is not what these configs run. The
# student's mmdet config gives the data (data/coco/), the 2x schedule and the
# runtime. The pair is
# distilled on every FPN level; a recipe (../recipes/) adds the connector and
# the loss.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    '../mmkd_runtime.py'
]

# mmdet's faster-rcnn_r50_fpn_2x_coco.py model (torchvision://resnet50 init);
# `_base_.model` comes with _scope_='mmdet' (see retinanet_r50_r18.py).
student = _base_.model

# mmdet's faster-rcnn_r101_fpn_2x_coco.py model, named by its config (built
# by MMRazor's model builder, see retinanet_r50_r18.py). Its ImageNet init
# is not applied: all its weights come from teacher_ckpt.
teacher = dict(
    cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    pretrained=False)

# mmdet metafile: faster-rcnn_r101_fpn_2x_coco (box AP 39.8).
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='StrictFpnTeacherDistill',  # teacher: backbone + neck, strict ckpt
    architecture=student,
    teacher=teacher,
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P2-P6
        student_channels=256,
        teacher_channels=256))
# As in MMRazor's distillation configs: DDP must accept parameters that get
# no gradient in a step (the connectors, once distillation is stopped).
find_unused_parameters = True
