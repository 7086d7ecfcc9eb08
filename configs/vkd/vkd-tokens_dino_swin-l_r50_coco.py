# VkD on COCO2017, tokens only (neck maps and encoder output per paired
# scale; no query terms, so the teacher stops after its encoder).
_base_ = ['./vkd_dino_swin-l_r50_coco.py']
model = dict(distiller=dict(queries=None))
