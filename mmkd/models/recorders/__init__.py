from .detr_recorders import (
    DetrDecoderQueriesRecorder,
    DetrEncoderLevelsRecorder,
)

__all__ = ['DetrDecoderQueriesRecorder', 'DetrEncoderLevelsRecorder']
