# MMRazor's PKD on the built-in data (baseline): Pearson-correlation feature
# loss per FPN level. Student and teacher FPNs are both 64 channels, so, as in
# MMRazor's own PKD configs, no connector.
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=None,
        loss=dict(_delete_=True, type='PKDLoss', loss_weight=6.0)))
