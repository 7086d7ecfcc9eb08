# The demo teacher (64-channel FPN) and the narrower student (32-channel FPN)
# as a distiller, every FPN level, with VkD's recipe (orthogonal 32->64
# projector per level, batch standardisation, smooth-L1) at the demo's
# weight 6: VkD as it is. The other configs here change only the connector.
# (Named without a method prefix: it states the channels itself.)
_base_ = ['../_base_/pair.py', '../../_base_/recipes/vkd.py']
model = dict(
    architecture=dict(_base_.narrow_student, _delete_=True),
    distiller=dict(
        _base_.recipe,
        student_channels=32,
        teacher_channels=64,
        loss=dict(_base_.recipe.loss, loss_weight=6.0)))
