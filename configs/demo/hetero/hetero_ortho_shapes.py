# The demo teacher (ResNet-18, 64-channel FPN) and the PVTv2-b0 student
# (64-channel FPN) as a distiller, every FPN level (same channels and strides
# on both sides), with VkD's recipe (orthogonal 64->64 projector per level,
# batch standardisation, smooth-L1) at the demo's weight 6: VkD as it is.
# The other configs here change only the connector.
_base_ = ['../_base_/pair.py', '../../_base_/recipes/vkd.py']
model = dict(
    architecture=dict(_base_.hetero_student, _delete_=True),
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=6.0)))
