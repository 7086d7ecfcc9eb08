"""The start-up hook (mmkd_config_scope.py, installed as
mmkd_config_scope.pth by the wheel and the editable install alike):
``mmkd::`` names in any tool, nothing done until a config names one."""
import os
import subprocess
import sys

import pytest

PROBE = '''
import sys
finders = [type(f).__name__ for f in sys.meta_path]
assert '_Finder' in finders, finders
from mmengine.config import Config
import mmengine.config.utils as utils
assert 'mmkd' not in sys.modules, 'mmkd imported before any config'
assert '_Finder' not in [type(f).__name__ for f in sys.meta_path]
cfg = Config.fromfile(sys.argv[1])
print(cfg.model.type, 'mmkd' in sys.modules)
'''


@pytest.fixture
def user_config(tmp_path):
    path = tmp_path / 'my_vkd.py'
    path.write_text("_base_ = ['mmkd::vkd/vkd_retinanet_r50_r18_coco.py']\n"
                    'model = dict(distiller=dict(loss=dict(loss_weight=5.)))'
                    '\n')
    return str(path)


def test_the_hook_is_installed_in_this_environment():
    import mmkd_config_scope
    with open(mmkd_config_scope.pth_file()) as f:
        assert f.read().strip() == 'import mmkd_config_scope'


def test_mmkd_names_resolve_and_mmkd_is_imported_only_then(user_config):
    proc = subprocess.run([sys.executable, '-c', PROBE, user_config],
                          capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(user_config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ['StrictFpnTeacherDistill', 'True']


def test_the_hook_can_be_switched_off(user_config):
    env = dict(os.environ, MMKD_CONFIG_SCOPE='0')
    code = ('import sys; from mmengine.config import Config; '
            'Config.fromfile(sys.argv[1])')
    proc = subprocess.run([sys.executable, '-c', code, user_config],
                          capture_output=True, text=True, timeout=300,
                          env=env, cwd=os.path.dirname(user_config))
    assert proc.returncode != 0
    assert 'does not support to load mmkd config' in proc.stderr
