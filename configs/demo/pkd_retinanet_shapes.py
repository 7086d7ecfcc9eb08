# MMRazor's PKD on the built-in data (baseline): Pearson-correlation feature
# loss per FPN level; equal channels (64), so, as in MMRazor's own PKD
# configs, no connector.
_base_ = ['./_base_/pair.py', '../_base_/recipes/pkd.py']
# Weight 6 (MMRazor's Faster R-CNN value), the weight of the comparison in
# docs/results.md.
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=6.0)))
