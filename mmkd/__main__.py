"""``mmkd TOOL [ARGS]`` (or ``python -m mmkd TOOL [ARGS]``): run one of the
tools shipped in ``mmkd/.mim/tools`` (the checkout's ``tools/``), so that a
plain ``pip install`` gives the same commands as the repository::

    mmkd train mmkd::vkd/vkd_retinanet_r50_r18_coco.py
    mmkd config --teacher T.py --teacher-ckpt T.pth --student S.py ...
    mmkd demo
    mmkd list
"""
import os
import os.path as osp
import runpy
import sys
from typing import Dict, List, Optional

from .config_files import package_dir

# Short names of tools: `mmkd config` is tools/make_distill_config.py.
ALIASES = {'config': 'make_distill_config'}


def tools() -> Dict[str, str]:
    """Tool name -> script path, for every Python tool shipped with mmkd."""
    root = osp.join(package_dir(), '.mim', 'tools')
    found = {}
    for sub in ('', 'analysis'):
        folder = osp.join(root, sub)
        if not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith('.py') and not name.startswith('_'):
                found[name[:-3]] = osp.join(folder, name)
    for alias, name in ALIASES.items():
        if name in found:
            found[alias] = found[name]
    return found


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = tools()
    if not argv or argv[0] in ('-h', '--help', 'list'):
        print(__doc__.strip().split('\n\n')[0])
        print('tools: ' + ', '.join(available))
        return
    name, args = argv[0], argv[1:]
    if name not in available:
        sys.exit(f'mmkd: unknown tool {name!r}; choose one of '
                 f'{", ".join(available)} (looked in '
                 f'{osp.join(package_dir(), ".mim", "tools")})')
    sys.argv = [available[name]] + args
    runpy.run_path(available[name], run_name='__main__')


if __name__ == '__main__':
    main()
