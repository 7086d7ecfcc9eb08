from .projector_connector import ProjectorConnector

__all__ = ['ProjectorConnector']
