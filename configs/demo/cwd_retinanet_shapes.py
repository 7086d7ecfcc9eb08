# MMRazor's CWD on the built-in data (baseline): channel-wise distribution
# distillation per FPN level; equal channels (64), so no connector, as in
# MMRazor's FPN CWD configs.
_base_ = ['./_base_/pair.py', '../_base_/recipes/cwd.py']
model = dict(distiller=_base_.recipe)
