# MMDetection's runtime with iteration-based logging and checkpoints for the
# short CPU runs on the built-in data.
_base_ = ['mmdet::_base_/default_runtime.py', './mmkd_runtime.py']
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
