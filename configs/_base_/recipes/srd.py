# SRD (Miles & Mikolajczyk, AAAI 2024, arXiv 2303.11098), as mmkd applies it
# to FPN detectors: a linear 1x1 projector per level (with bias), both sides
# standardised per channel of each image over H*W, and the soft maximum
# log(sum |d|^4) of the absolute differences (distance='l1' with
# reduction='logsum': without distance='l1' it would be a soft maximum of a
# smooth-L1, roughly |d|^8, not SRD).
#
# SRD's released code is classification only; the per-image normalisation
# over H*W and the equal weighting of the distillation and task losses for
# detection are the author's statements in the SRD repository's issue 2.
#
# Weight: 1 (equal weighting). log(sum |d|^4) is scale-free (its gradient
# 4 d^3 / sum |d|^4 does not fade as the features match). Its value, a log
# over all B*C*H*W elements (about 13 to 19 per level at the start, COCO
# sizes, 2 images per GPU), is not comparable with the detection loss; only
# its gradient counts.
# `_scope_='mmrazor'` on each module: MMRazor's registry holds them, and a
# config inheriting this file by its mmkd:: name would otherwise get
# _scope_='mmkd' (MMEngine's rule), from which they are not found.
recipe = dict(
    connector=dict(
        _scope_='mmrazor', type='ProjectorConnector', orthogonal=False),
    loss=dict(
        _scope_='mmrazor',
        type='OrthoDistillLoss',
        norm='instance',
        distance='l1',
        reduction='logsum',
        alpha=4.0,
        loss_weight=1.0))
