# VkD on COCO2017.
# Teacher Faster R-CNN R101 2x (mmdet zoo), student Faster R-CNN R50 2x.
_base_ = [
    '../_base_/coco/faster-rcnn_r101_r50_2x.py',
    '../_base_/recipes/vkd.py'
]
# MMRazor's PKD weight for Faster R-CNN: 6 (the recipe's 10 is RetinaNet's).
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=6.0)))
