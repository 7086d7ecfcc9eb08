from .cli import add_common_args, parse, run_tool
from .distill_config import METHODS, DistillConfigError, write_distill_config
from .train import enable_amp, load_config, test, train

__all__ = ['add_common_args', 'parse', 'run_tool', 'enable_amp',
           'load_config', 'test', 'train', 'DistillConfigError', 'METHODS',
           'write_distill_config']
