# MMRazor's CWD on the built-in data (baseline): channel-wise distribution
# distillation per FPN level, after a 1x1 ConvModule to the teacher's channels.
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=dict(_delete_=True, type='ConvModuleConnector',
                       kernel_size=1, norm_cfg=None, act_cfg=None),
        loss=dict(_delete_=True, type='ChannelWiseDivergence', tau=1.0,
                  loss_weight=10.0)))
