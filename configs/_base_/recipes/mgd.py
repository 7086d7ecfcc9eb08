# MGD (baseline; MMRazor's MGDConnector + MGDLoss): a generation block per
# level rebuilds the teacher's map from the randomly masked student map.
# MMRazor's RetinaNet values: 65% of the positions masked, alpha 2e-5 on the
# summed squared error. MMRazor's RetinaNet result (X101 -> R50, 41.0) also
# starts the student's neck and head from the teacher's; mmkd's configs do
# not.
recipe = dict(
    connector=dict(type='MGDConnector', lambda_mgd=0.65),
    loss=dict(type='MGDLoss', alpha_mgd=0.00002))
