# MGD (baseline; MMRazor's MGDConnector + MGDLoss): a generation block per
# level rebuilds the teacher's map from the randomly masked student map.
# MMRazor's RetinaNet values: 65% of the positions masked, alpha 2e-5 on the
# summed squared error. MMRazor's RetinaNet result (X101 -> R50, 41.0) also
# starts the student's neck and head from the teacher's; mmkd's configs do
# not.
# `_scope_='mmrazor'` on each module: MMRazor's registry holds them, and a
# config inheriting this file by its mmkd:: name would otherwise get
# _scope_='mmkd' (MMEngine's rule), from which they are not found.
recipe = dict(
    connector=dict(
        _scope_='mmrazor', type='MGDConnector', lambda_mgd=0.65),
    loss=dict(_scope_='mmrazor', type='MGDLoss', alpha_mgd=0.00002))
