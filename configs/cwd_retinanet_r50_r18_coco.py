# CWD (baseline) on COCO2017.
# Teacher: RetinaNet R50 1x (mmdet zoo); student: RetinaNet R18 1x.
# MMRazor's channel-wise distillation: no connector, KL divergence between
# the spatial softmax of each channel.
_base_ = './_base_/coco/retinanet_r50_r18.py'
model = dict(
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P3-P7
        student_channels=256,
        teacher_channels=256,
        # The values of MMRazor's FPN CWD configs (RetinaNet and Faster R-CNN,
        # R101 -> R50 1x): tau 1, weight 10. MMRazor publishes no COCO result
        # for them; not tuned here either.
        loss=dict(type='ChannelWiseDivergence', tau=1.0, loss_weight=10.0)))
