# MMRazor's CWD on the built-in data (baseline): channel-wise distribution
# distillation per FPN level; equal channels (64), so no connector, as in
# MMRazor's FPN CWD configs.
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=None,
        loss=dict(_delete_=True, type='ChannelWiseDivergence', tau=1.0,
                  loss_weight=10.0)))
