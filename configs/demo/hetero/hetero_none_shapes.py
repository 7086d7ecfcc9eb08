# Hetero cell, VkD's loss with no projector: student channel i against
# teacher channel i (both 64), after the same batch standardisation.
_base_ = ['./hetero_ortho_shapes.py']
model = dict(distiller=dict(connector=None))
