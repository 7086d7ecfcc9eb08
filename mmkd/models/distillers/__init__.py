from .checked_distiller import CheckedDistiller, DistillerConfigError

__all__ = ['CheckedDistiller', 'DistillerConfigError']
