# DINO's optimiser (AdamW, gradient clipping at 0.1) on an iteration
# schedule for CPU runs on the built-in data: linear warm-up, cosine decay.
# No backbone lr multiplier: the demo trains from scratch.
max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0004, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         T_max=max_iters - 50, eta_min=0.00001)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
