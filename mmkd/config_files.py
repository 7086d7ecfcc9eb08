"""Config names as users write them: a path, or ``package::path``."""
import os.path as osp


def package_dir() -> str:
    """The folder of the imported mmkd package (site-packages/mmkd for a
    wheel, the checkout's mmkd/ for an editable install): its ``.mim``
    holds the shipped configs and tools."""
    return osp.dirname(osp.abspath(__file__))


def resolve_config(config: str, key: str = 'CONFIG') -> str:
    """The file behind ``config``: a path as given, or ``mmkd::vkd/x.py`` /
    ``mmdet::retinanet/x.py`` (a config shipped in the package's ``.mim``
    folder). Raises ``FileNotFoundError`` naming where it looked."""
    if osp.isfile(config):
        return config
    if '::' in config:
        # What MMEngine does for pkg::dir/x.py (the package's .mim/configs),
        # and for pkg::x.py too, which MMEngine refuses (it wants a folder;
        # mmkd's first published name has none).
        from mmengine.config import config as config_module
        package, name = config.split('::', 1)
        if not config_module.is_installed(package):
            raise FileNotFoundError(
                f'{key} {config!r}: the package {package!r} is not '
                f'installed (pip install {package})')
        path = osp.join(config_module.get_installed_path(package), '.mim',
                        'configs', name)
        if osp.isfile(path):
            return path
        raise FileNotFoundError(
            f'{key} {config!r} does not exist (looked at {path}); '
            'the configs table in the README lists them')
    raise FileNotFoundError(f'{key} {config!r} does not exist (looked at '
                            f'{osp.abspath(config)})')


__all__ = ['package_dir', 'resolve_config']
