# SRD on COCO2017.
# Teacher: Faster R-CNN R101 2x (mmdet zoo); student: Faster R-CNN R50 2x.
# A linear 1x1 projector per FPN level, both sides standardised per channel
# of each image, soft maximum log(sum |d|^4).
_base_ = './_base_/coco/faster-rcnn_r101_r50_2x.py'
model = dict(
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P2-P6
        student_channels=256,
        teacher_channels=256,
        connector=dict(type='ProjectorConnector', orthogonal=False),
        # Not tuned on COCO. log(sum |d|^4) is scale-free (its gradient
        # 4 d^3 / sum |d|^4 does not fade as the features match), so weight 1,
        # as in the demo. Its value, a log over all B*C*H*W elements (about
        # 13 to 19 per level at the start, COCO sizes, 2 images per GPU), is
        # not comparable with the detection loss; only its gradient counts.
        loss=dict(
            type='OrthoDistillLoss',
            norm='instance',
            distance='l1',
            reduction='logsum',
            alpha=4.0,
            loss_weight=1.0)))
