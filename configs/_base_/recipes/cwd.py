# CWD (baseline; MMRazor's ChannelWiseDivergence): no connector (equal
# channels), KL divergence between the spatial softmax of each channel.
# The values of MMRazor's FPN CWD configs (RetinaNet and Faster R-CNN,
# R101 -> R50 1x): tau 1, weight 10. MMRazor publishes no COCO result for
# them; not tuned here either.
# `_scope_='mmrazor'` on each module: MMRazor's registry holds them, and a
# config inheriting this file by its mmkd:: name would otherwise get
# _scope_='mmkd' (MMEngine's rule), from which they are not found.
recipe = dict(
    loss=dict(_scope_='mmrazor', type='ChannelWiseDivergence', tau=1.0,
              loss_weight=10.0))
