from .detr_recorders import (
    DetrDecoderQueriesRecorder,
    DetrEncoderLevelsRecorder,
    DetrQueryScoresRecorder,
)

__all__ = ['DetrDecoderQueriesRecorder', 'DetrEncoderLevelsRecorder',
           'DetrQueryScoresRecorder']
