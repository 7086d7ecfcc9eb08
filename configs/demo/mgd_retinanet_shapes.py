# MMRazor's MGD on the built-in data (baseline): masked generative
# distillation; MGDConnector masks the student map and regenerates the
# teacher's from it.
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=dict(_delete_=True, type='MGDConnector', lambda_mgd=0.65),
        loss=dict(_delete_=True, type='MGDLoss', alpha_mgd=0.00002)))
