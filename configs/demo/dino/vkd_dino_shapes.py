# VkD on the built-in DINO pair, tokens and queries, weight 4.0 on each
# term (VkD's weight on the sum of its terms); orthogonal projector per
# term, batch standardisation, smooth-L1. Which terms are VkD's:
# - neck maps, 4 paired scales (loss_neck0-3): VkD's patch (token) terms;
# - queries, the 3 decoder layers pooled into ONE term (loss_query) on the
#   teacher's queries through both decoders (docs/detr.md): VkD's query term;
# - encoder tokens, 4 paired scales (loss_enc0-3): an mmkd ADDITION, not
#   VkD's (ViDT has no encoder).
_base_ = ['./_base_/pair.py', '../../_base_/recipes/vkd.py']
model = dict(
    distiller=dict(
        _base_.recipe, loss=dict(_base_.recipe.loss, loss_weight=4.0)))
