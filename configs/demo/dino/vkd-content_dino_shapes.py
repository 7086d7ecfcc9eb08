# VkD on the built-in DINO pair, tokens and queries, with mmkd's OWN query
# rule (no paper's): the STUDENT's content query n at the teacher's
# reference point n (`query_input='student_content'`), instead of the
# teacher's whole query (KD-DETR's distillation points, ./vkd_dino_shapes.py).
# Everything else as there: the same terms and weights, one decoder call.
# Kept to measure the two rules side by side (docs/detr.md).
_base_ = ['./vkd_dino_shapes.py']
model = dict(query_input='student_content')
