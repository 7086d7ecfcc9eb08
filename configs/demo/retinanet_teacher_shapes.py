# The demo's teacher: wider backbone and FPN, trained longer.
_base_ = ['./retinanet_student_shapes.py']
model = {{_base_.teacher}}
