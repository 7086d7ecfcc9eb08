# VkD on the built-in DINO pair, tokens only: neck maps (VkD's patch terms)
# and encoder output (an mmkd addition: ViDT has no encoder) of each paired
# scale; no query term: the teacher stops after its encoder and the
# student's decoder has no distillation queries.
_base_ = ['./vkd_dino_shapes.py']
model = dict(distiller=dict(queries=None))
