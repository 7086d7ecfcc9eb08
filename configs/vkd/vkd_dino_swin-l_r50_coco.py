# VkD on COCO2017, tokens and queries (VkD's full recipe, as its ViDT code):
# teacher DINO 5-scale Swin-L (mmdet zoo), student DINO 4-scale R50 12e.
# Weight 4.0 on each term: VkD's weight on the sum of its terms.
_base_ = [
    '../_base_/coco/dino_swin-l_r50.py',
    '../_base_/recipes/vkd.py'
]
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=4.0)))
