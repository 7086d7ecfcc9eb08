# The built-in data's DINO pair (./models.py) as a distiller, on the
# student's data, schedule and runtime. The student's 4 scales (strides
# 8-64) are paired with the teacher's scales of the same strides (its
# 5th, stride 128, is left out). 256-dim tokens on both sides. A recipe
# (../../../_base_/recipes/) adds the connector and the loss; the method
# configs (../*.py) choose the terms.
_base_ = ['../dino_student_shapes.py']
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='DinoTeacherDistill',
    architecture={{_base_.student}},
    teacher={{_base_.teacher}},
    # Written by `python tools/compare.py --pair dino` (it trains the teacher
    # first); point it at your own with --cfg-options model.teacher_ckpt=PATH
    teacher_ckpt='work_dirs/dino_demo/teacher/teacher.pth',
    query_input='teacher',  # KD-DETR's distillation points
    probe='group',  # one decoder call: the points as a masked query group
    distiller=dict(
        type='DetrDistiller',
        student_channels=256,
        teacher_channels=256,
        neck=dict(levels=(0, 1, 2, 3), teacher_levels=(0, 1, 2, 3)),
        encoder=dict(levels=(0, 1, 2, 3), teacher_levels=(0, 1, 2, 3)),
        # Every decoder layer, pooled into one term, on the teacher's
        # queries (docs/detr.md).
        queries=dict(levels=(0, 1, 2), pool=True)))
