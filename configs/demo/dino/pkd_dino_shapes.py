# The baseline on the built-in DINO pair: MMRazor's PKD on the neck maps of
# each paired scale (what an FPN-distillation user would try first; the
# teacher runs backbone + neck only). Weight 4.0 per term, VkD's, so that
# the comparison is the loss and the terms, not the weight.
_base_ = ['./_base_/pair.py', '../../_base_/recipes/pkd.py']
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=4.0),
        encoder=None, queries=None))
