# The demo's teacher: a 2x wider backbone (ResNet-18 with 32 base channels
# against the student's 16), the same 64-channel FPN, trained 1600 iterations
# (the students: 600).
_base_ = ['./retinanet_student_shapes.py']
model = {{_base_.teacher}}
max_iters = 1600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         T_max=max_iters - 100, eta_min=0.0001)
]
