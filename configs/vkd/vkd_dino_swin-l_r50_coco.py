# VkD on COCO2017, tokens and queries: teacher DINO 5-scale Swin-L (mmdet
# zoo), student DINO 4-scale R50 12e. Weight 4.0 on each term, VkD's weight
# on the sum of its terms. Which terms are VkD's (its ViDT code):
# - neck maps, 4 paired scales (loss_neck0-3): VkD's multi-scale patch
#   (token) terms;
# - queries, all 6 decoder layers pooled into ONE term (loss_query: one
#   projector, batch statistics over layers x queries): VkD's query term;
# - encoder tokens, 4 paired scales (loss_enc0-3): an mmkd ADDITION, not
#   VkD's (ViDT has no encoder); vkd-tokens_* and `encoder=None` ablate it.
# VkD's own decoder-input term has no counterpart here (DINO's decoder input
# is the learned content query, not a feature of the image).
_base_ = [
    '../_base_/coco/dino_swin-l_r50.py',
    '../_base_/recipes/vkd.py'
]
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=4.0)))
