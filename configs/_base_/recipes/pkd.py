# PKD (baseline; MMRazor's PKDLoss): no connector (equal channels), Pearson
# correlation of the per-channel standardised maps.
# MMRazor's weights: 10 for RetinaNet (here), 6 for Faster R-CNN (set in
# those configs).
recipe = dict(loss=dict(type='PKDLoss', loss_weight=10.0))
