# VkD on the built-in data: orthogonal projector per FPN level, batch
# standardisation, smooth-L1. Same data, schedule and seed as the student.
_base_ = ['./retinanet_student_shapes.py']
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FpnTeacherDistill',
    architecture={{_base_.student}},
    teacher={{_base_.teacher}},
    # Written by tools/demo.py; point it at your own teacher with
    # --cfg-options model.teacher_ckpt=PATH
    teacher_ckpt='work_dirs/demo/teacher/teacher.pth',
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),
        student_channels=64,
        teacher_channels=64,
        connector=dict(type='ProjectorConnector', orthogonal=True),
        # Weight 6, PKD's in the same setting (pkd_retinanet_shapes.py): where
        # |d| < 1 this loss is PKD's (same per-channel standardisation over
        # the batch, smooth-L1 = d^2/2). The COCO configs reason the same way.
        loss=dict(type='OrthoDistillLoss', norm='batch',
                  distance='smooth_l1', loss_weight=6.0)))
