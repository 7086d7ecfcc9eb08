"""Config names as users write them: a path, or ``package::path``."""
import os.path as osp


def resolve_config(config: str, key: str = 'CONFIG') -> str:
    """The file behind ``config``: a path as given, or ``mmkd::vkd/x.py`` /
    ``mmdet::retinanet/x.py`` (a config shipped in the package's ``.mim``
    folder). Raises ``FileNotFoundError`` naming where it looked."""
    if osp.isfile(config):
        return config
    if '::' in config:
        from mmengine.config import Config
        package, name = config.split('::', 1)
        try:
            if '/' in name:
                path, _ = Config._get_cfg_path(config, '')
            else:
                # MMEngine wants a folder (pkg::dir/x.py); a config at the
                # top of the package's configs (mmkd's first published
                # name) is looked up here.
                from mmengine.config import config as config_module
                path = osp.join(config_module.get_installed_path(package),
                                '.mim', 'configs', name)
        except (ModuleNotFoundError, KeyError, AssertionError, ValueError,
                FileNotFoundError) as exc:
            raise FileNotFoundError(
                f'{key} {config!r}: {package!r} configs cannot be found '
                f'({type(exc).__name__}: {exc}); is {package} installed?'
            ) from exc
        if osp.isfile(path):
            return path
        raise FileNotFoundError(
            f'{key} {config!r} does not exist (looked at {path}); '
            'the configs table in the README lists them')
    raise FileNotFoundError(f'{key} {config!r} does not exist (looked at '
                            f'{osp.abspath(config)})')


__all__ = ['resolve_config']
