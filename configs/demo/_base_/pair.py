# The demo pair (./models.py) as a distiller, on the student's data, schedule
# and runtime: every FPN level, 64 channels on both sides (square projectors,
# like the COCO pairs' 256). A recipe (../../_base_/recipes/) adds the
# connector and the loss.
_base_ = ['../retinanet_student_shapes.py']
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='StrictFpnTeacherDistill',
    architecture={{_base_.student}},
    teacher={{_base_.teacher}},
    # Written by tools/demo.py; point it at your own teacher with
    # --cfg-options model.teacher_ckpt=PATH
    teacher_ckpt='work_dirs/demo/teacher/teacher.pth',
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),
        student_channels=64,
        teacher_channels=64))
