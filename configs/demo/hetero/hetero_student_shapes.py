# The heterogeneous student alone (../_base_/models.py `hetero_student`:
# RetinaNet with a PVTv2-b0 backbone and a 64-channel FPN) on the built-in
# data: the baseline of the hetero cells (docs/beyond_retinanet.md). Same
# data, schedule and runtime as ../retinanet_student_shapes.py.
_base_ = ['../retinanet_student_shapes.py']
model = dict(_base_.hetero_student, _delete_=True)
