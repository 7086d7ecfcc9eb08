# VkD on COCO2017, tokens only: neck maps (VkD's patch terms) and encoder
# output (an mmkd addition: ViDT has no encoder) per paired scale; no query
# term, so the teacher stops after its encoder.
_base_ = ['./vkd_dino_swin-l_r50_coco.py']
model = dict(distiller=dict(queries=None))
