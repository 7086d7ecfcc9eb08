# The student alone on the built-in data: the baseline every recipe must beat.
_base_ = [
    '../_base_/demo_runtime.py', '../_base_/datasets/shapes.py',
    '../_base_/schedules/demo.py', './_base_/models.py'
]
model = {{_base_.student}}
