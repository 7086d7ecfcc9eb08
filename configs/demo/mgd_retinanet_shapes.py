# MMRazor's MGD on the built-in data (baseline): masked generative
# distillation; MGDConnector masks the student map and regenerates the
# teacher's from it.
_base_ = ['./_base_/pair.py', '../_base_/recipes/mgd.py']
model = dict(distiller=_base_.recipe)
