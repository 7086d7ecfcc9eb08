# MMRazor's PKD on the built-in data (baseline): Pearson-correlation feature
# loss per FPN level; a 1x1 ConvModule maps the student's 32 channels to the
# teacher's 64 (PKD compares equal shapes).
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=dict(_delete_=True, type='ConvModuleConnector',
                       kernel_size=1, norm_cfg=None, act_cfg=None),
        loss=dict(_delete_=True, type='PKDLoss', loss_weight=6.0)))
