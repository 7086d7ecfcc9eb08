# VkD on the built-in DINO pair, tokens only: neck maps and encoder output
# of each paired scale (no query terms: the teacher stops after its encoder
# and the student's decoder runs once).
_base_ = ['./vkd_dino_shapes.py']
model = dict(distiller=dict(queries=None))
