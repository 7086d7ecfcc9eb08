from .ortho_distill_loss import OrthoDistillLoss

__all__ = ['OrthoDistillLoss']
