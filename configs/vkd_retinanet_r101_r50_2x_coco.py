# VkD on COCO2017.
# Teacher: RetinaNet R101 2x (mmdet zoo); student: RetinaNet R50 2x.
# An orthogonal 1x1 projector per FPN level, both sides standardised per
# channel over the batch, smooth-L1.
_base_ = './_base_/coco/retinanet_r101_r50_2x.py'
model = dict(
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P3-P7
        student_channels=256,
        teacher_channels=256,
        connector=dict(type='ProjectorConnector', orthogonal=True),
        # Not tuned on COCO. Where |d| < 1 this loss is MMRazor's PKD (the same
        # per-channel standardisation over the batch; smooth-L1 is d^2/2
        # there), so it takes PKD's RetinaNet weight from MMRazor (10).
        loss=dict(
            type='OrthoDistillLoss',
            norm='batch',
            distance='smooth_l1',
            loss_weight=10.0)))
