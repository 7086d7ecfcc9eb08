# VkD on the built-in DINO pair: tokens (neck maps and encoder output of
# each paired scale) and queries (every decoder layer, teacher's queries
# through the student's decoder: docs/detr.md). Orthogonal projector per
# term, batch standardisation, smooth-L1, weight 4.0 on each term (VkD's
# weight on the sum of its terms).
_base_ = ['./_base_/pair.py', '../../_base_/recipes/vkd.py']
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=4.0)))
