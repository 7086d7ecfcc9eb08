"""On PYTHONPATH of the documented-command tests' subprocesses: no network.

Any attempt to open a socket to another host fails at once, naming what
tried, so a command that would download (a teacher checkpoint, ImageNet
weights) fails the test instead of reaching out."""
import socket

_connect = socket.socket.connect


def _refuse(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host in ('127.0.0.1', 'localhost', '::1'):
        return _connect(self, address)  # torchrun's rendezvous, gloo
    raise OSError(f'tests: no network (tried to connect to {address!r})')


socket.socket.connect = _refuse
