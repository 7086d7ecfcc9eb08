# SRD on the built-in data: linear projector per FPN level, instance
# standardisation, log-sum of |d|^4. Same data, schedule and seed as VkD.
_base_ = ['./vkd_retinanet_shapes.py']
model = dict(
    distiller=dict(
        connector=dict(type='ProjectorConnector', orthogonal=False),
        loss=dict(
            _delete_=True, type='OrthoDistillLoss', norm='instance',
            distance='l1', reduction='logsum', alpha=4.0, loss_weight=1.0)))
