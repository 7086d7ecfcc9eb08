# PKD (baseline; MMRazor's PKDLoss): no connector (equal channels), Pearson
# correlation of the per-channel standardised maps.
# MMRazor's weights: 10 for RetinaNet (here), 6 for Faster R-CNN (set in
# those configs).
# `_scope_='mmrazor'` on each module: MMRazor's registry holds them, and a
# config inheriting this file by its mmkd:: name would otherwise get
# _scope_='mmkd' (MMEngine's rule), from which they are not found.
recipe = dict(loss=dict(_scope_='mmrazor', type='PKDLoss', loss_weight=10.0))
