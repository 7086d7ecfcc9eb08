# VkD on the built-in data: orthogonal projector per FPN level, batch
# standardisation, smooth-L1. Same data, schedule and seed as the student.
_base_ = ['./_base_/pair.py', '../_base_/recipes/vkd.py']
# Weight 6, PKD's in the same setting (pkd_retinanet_shapes.py): where
# |d| < 1 this loss is PKD's (the recipe's reasoning).
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=6.0)))
