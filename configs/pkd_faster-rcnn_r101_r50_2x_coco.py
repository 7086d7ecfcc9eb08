# PKD (baseline) on COCO2017.
# Teacher: Faster R-CNN R101 2x (mmdet zoo); student: Faster R-CNN R50 2x.
# MMRazor's PKD: no connector, Pearson correlation of the per-channel
# standardised maps.
_base_ = './_base_/coco/faster-rcnn_r101_r50_2x.py'
model = dict(
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P2-P6
        student_channels=256,
        teacher_channels=256,
        # MMRazor's loss and its Faster R-CNN weight (6). MMRazor distils
        # P2-P5; P6 (a max-pool of P5 in this FPN) is added here, as for
        # every recipe in this folder.
        loss=dict(type='PKDLoss', loss_weight=6)))
