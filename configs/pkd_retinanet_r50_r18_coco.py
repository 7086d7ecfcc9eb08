# PKD (baseline) on COCO2017.
# Teacher: RetinaNet R50 1x (mmdet zoo); student: RetinaNet R18 1x.
# MMRazor's PKD: no connector, Pearson correlation of the per-channel
# standardised maps.
_base_ = './_base_/coco/retinanet_r50_r18.py'
model = dict(
    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4),  # P3-P7
        student_channels=256,
        teacher_channels=256,
        # MMRazor's loss and its RetinaNet weight (10). MMRazor distils
        # P3-P6; P7 is added here, as for every recipe in this folder.
        loss=dict(type='PKDLoss', loss_weight=10)))
