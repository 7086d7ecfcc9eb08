# SRD on the built-in data: linear projector per FPN level, instance
# standardisation, log-sum of |d|^4. Same data, schedule and seed as VkD.
_base_ = ['./_base_/pair.py', '../_base_/recipes/srd.py']
# P3-P6: at 128x128 P7 is 1x1, where the per-image standardisation is
# identically 0 on both sides (no signal; log-sum of zeros = -104).
model = dict(distiller=dict(_base_.recipe, levels=(0, 1, 2, 3)))
