# CWD (baseline; MMRazor's ChannelWiseDivergence): no connector (equal
# channels), KL divergence between the spatial softmax of each channel.
# The values of MMRazor's FPN CWD configs (RetinaNet and Faster R-CNN,
# R101 -> R50 1x): tau 1, weight 10. MMRazor publishes no COCO result for
# them; not tuned here either.
recipe = dict(
    loss=dict(type='ChannelWiseDivergence', tau=1.0, loss_weight=10.0))
