# The DINO demo's teacher: 2x wider backbone, one more (coarser: see
# ./_base_/models.py) scale, trained longer than the students.
_base_ = ['./dino_student_shapes.py']
model = {{_base_.teacher}}
max_iters = 1500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         T_max=max_iters - 50, eta_min=0.00001)
]
