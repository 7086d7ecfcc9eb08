# VkD (Miles, Elezi & Deng, CVPR 2024, arXiv 2403.06213), as mmkd applies it
# to FPN detectors: an orthogonal 1x1 projector per level (W on the Stiefel
# manifold, no bias), both sides standardised per channel over the batch
# (VkD's detection normalisation), smooth-L1.
#
# A recipe base defines `recipe`, not `model`, so that it can sit beside a
# pair base; a method config joins them:
#     _base_ = ['../_base_/coco/<pair>.py', '../_base_/recipes/vkd.py']
#     model = dict(distiller=_base_.recipe)
#
# Weight: not tuned on COCO. Where |d| < 1 this loss is MMRazor's PKD (the
# same per-channel standardisation over the batch; smooth-L1 is d^2/2 there),
# so it takes PKD's weight from MMRazor: 10 for RetinaNet (here), 6 for
# Faster R-CNN (set in those configs).
# `_scope_='mmrazor'` on each module: MMRazor's registry holds them, and a
# config inheriting this file by its mmkd:: name would otherwise get
# _scope_='mmkd' (MMEngine's rule), from which they are not found.
recipe = dict(
    connector=dict(
        _scope_='mmrazor', type='ProjectorConnector', orthogonal=True),
    loss=dict(
        _scope_='mmrazor',
        type='OrthoDistillLoss',
        norm='batch',
        distance='smooth_l1',
        loss_weight=10.0))
