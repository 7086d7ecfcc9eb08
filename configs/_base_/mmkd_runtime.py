# What every mmkd config needs, whichever tool runs it (MMDetection's
# tools/train.py and tools/test.py, `mim train`, mmkd's own tools):
# - custom_imports: `import mmkd` when the config is loaded. It applies mmkd's
#   compatibility layer (MMRazor's quantization stub must be in place before
#   `mmrazor.models` is first imported; checkpoints load weights-only) and
#   registers ProjectorConnector, OrthoDistillLoss, FpnDistiller and the hooks.
# - FiniteLossHook: a NaN/Inf loss stops the run, naming the iteration and the
#   loss term, before the optimizer step writes it into the weights.
# - DropFrozenTeacherHook: checkpoints of a distiller leave out its frozen
#   teacher (it comes from model.teacher_ckpt) and get it back on load; on a
#   detector without a teacher it does nothing.
# - DistillLossRatioHook: logs distill_ratio, the distillation terms' sum over
#   the detector's own losses, beside the losses (nothing without a teacher).
# - AtomicCheckpointHook: checkpoints in a local work dir are written whole or
#   not at all (a temporary file renamed over the target), with the file mode
#   an ordinary write gives.
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = [
    dict(type='AtomicCheckpointHook'),
    dict(type='FiniteLossHook'),
    dict(type='DropFrozenTeacherHook'),
    dict(type='DistillLossRatioHook'),
]
