# The narrower student alone (../_base_/models.py `narrow_student`: the demo
# student with a 32-channel FPN) on the built-in data: the baseline of the
# narrow cells (docs/beyond_retinanet.md). Same data, schedule and runtime as
# ../retinanet_student_shapes.py.
_base_ = ['../retinanet_student_shapes.py']
model = dict(_base_.narrow_student, _delete_=True)
