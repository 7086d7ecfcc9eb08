# The DINO student alone on the built-in data: the baseline every recipe
# must beat (./_base_/models.py).
_base_ = [
    '../../_base_/demo_runtime.py', '../../_base_/datasets/shapes.py',
    './_base_/schedule.py', './_base_/models.py'
]
model = {{_base_.student}}
