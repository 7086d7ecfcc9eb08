from .cli import add_common_args, parse
from .train import enable_amp, load_config, test, train

__all__ = ['add_common_args', 'parse', 'enable_amp', 'load_config', 'test',
           'train']
