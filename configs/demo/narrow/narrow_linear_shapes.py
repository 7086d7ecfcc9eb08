# Narrow cell, VkD's loss after a free linear 32->64 projector
# (ProjectorConnector orthogonal=False, SRD's projector).
_base_ = ['./narrow_ortho_shapes.py']
model = dict(distiller=dict(connector=dict(orthogonal=False)))
