"""The lock (requirements/lock.txt, tools/lock.py): .venv holds exactly it,
the direct requirements agree with it, the offline lists are derived from
it, and the derivation (torch's own packages, the compiled scientific
stack, markers for the node's Python) does what its rules say, on a small
world of stand-in distributions written here."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


KEPT_TORCH = torch.version.cuda is not None  # install.sh keeps a CUDA torch


@pytest.fixture(scope='module')
def lock(load_tool):
    return load_tool('lock')


def _pins(path):
    """{name: version} read here, independently of tools/lock.py."""
    out = {}
    for line in open(path):
        line = line.split('#')[0].strip()
        if line:
            name, version = line.split('==')
            out[name.lower().replace('_', '-').replace('.', '-')] = version
    return out


def test_venv_holds_exactly_the_lock(lock):
    import sysconfig
    from importlib import metadata
    site = sysconfig.get_paths()['purelib']
    have = {d.metadata['Name'].lower().replace('_', '-').replace('.', '-'):
            d.version for d in metadata.distributions(path=[site])}
    have.pop('pip'), have.pop('mmkd')
    pins = _pins(lock.LOCK)
    if KEPT_TORCH:
        pytest.skip('a CUDA torch is kept: the lock\'s torch lines are not '
                    'installed')
    assert have == pins, sorted(set(have.items()) ^ set(pins.items()))


def test_direct_requirements_are_in_the_lock_at_their_versions(lock):
    pins = _pins(lock.LOCK)
    for name in ('runtime', 'tests'):
        for pkg, version in _pins(
                osp.join(ROOT, 'requirements', f'{name}.txt')).items():
            assert pins.get(pkg) == version, (name, pkg, version)
    assert pins['torch'] == '2.13.0' or pins['torch'].startswith('2.13.0+')
    assert int(_pins(lock.BUILD)['setuptools'].split('.')[0]) < 70


@pytest.mark.skipif(KEPT_TORCH, reason='the lock is written where the CPU '
                    'torch of the lock is installed')
def test_the_lock_and_the_offline_lists_are_what_lock_py_writes(lock):
    """Stale files fail here: `python tools/lock.py` rewrites them."""
    for path, text in lock.expected_files(lock.installed()).items():
        assert open(path).read() == text, \
            f'{osp.relpath(path, ROOT)} is stale: run python tools/lock.py'


# --- the derivation, on stand-in distributions ------------------------------
def _dist(site, name, version, requires=(), compiled=False):
    info = site / f'{name.replace("-", "_")}-{version}.dist-info'
    info.mkdir(parents=True)
    lines = ['Metadata-Version: 2.1', f'Name: {name}', f'Version: {version}']
    lines += [f'Requires-Dist: {r}' for r in requires]
    (info / 'METADATA').write_text('\n'.join(lines) + '\n')
    (info / 'WHEEL').write_text(
        f'Wheel-Version: 1.0\nRoot-Is-Purelib: '
        f'{"false" if compiled else "true"}\n')


@pytest.fixture
def world(tmp_path):
    site = tmp_path / 'site'
    d = lambda *a, **k: _dist(site, *a, **k)  # noqa: E731
    d('torch', '2.13.0', ['filelock', 'typing-extensions',
                          'setuptools; python_version >= "3.12"'],
      compiled=True)
    d('filelock', '3.0')
    d('typing-extensions', '4.0')
    d('rich', '13.0', ['typing-extensions', 'sphinx; extra == "docs"'])
    d('mmengine', '0.10.7', ['rich', 'numpy', 'opencv-python'])
    d('mmdet', '3.3.0', ['mmengine', 'scipy', 'shapely', 'pycocotools'])
    d('mmrazor', '1.0.0')
    d('mmcv', '2.1.0', ['addict', 'numpy'], compiled=True)
    d('addict', '2.4.0')
    d('pycocotools', '2.0.8', ['matplotlib', 'numpy'], compiled=True)
    d('matplotlib', '3.9.2', ['kiwisolver', 'cycler', 'numpy'],
      compiled=True)
    d('kiwisolver', '1.5', compiled=True)
    d('cycler', '0.12')
    d('numpy', '1.26.4', compiled=True)
    d('scipy', '1.13.1', ['numpy'], compiled=True)
    d('shapely', '2.2', ['numpy'], compiled=True)
    d('opencv-python', '4.10.0.84', ['numpy'], compiled=True)
    d('joblib', '1.4.2')
    d('pytest', '8.3.3', ['pluggy', 'colorama; sys_platform == "win32"'])
    d('pluggy', '1.5')
    d('wheel', '0.45')
    d('ninja', '1.13', compiled=True)
    d('setuptools', '80.0')
    d('ruff', '0.17.6', compiled=True)  # a dev tool: not for the node
    d('pip', '23.2.1')
    d('mmkd', '0.1.0')
    return site


def test_torch_lines_are_torch_and_what_only_torch_needs(lock, world):
    dists = lock.installed(str(world))
    assert 'pip' not in dists and 'mmkd' not in dists
    # typing-extensions is rich's too; setuptools is torch's on 3.12 only.
    assert lock.torch_only(dists) == {'torch', 'filelock'}
    text = lock.lock_text(dists)
    marked = {ln.split('==')[0] for ln in text.splitlines()
              if ln.endswith('# torch')}
    assert marked == {'torch', 'filelock'}
    pinned = [ln.split('  ')[0] for ln in text.splitlines()
              if not ln.startswith('#')]
    assert len(pinned) == 24 and 'ruff==0.17.6' in pinned


def test_offline_lists_follow_the_node_markers_and_split_compiled(lock,
                                                                 world):
    dists = lock.installed(str(world))
    lists = lock.offline_lists(dists, {'setuptools': '69.5.1'})
    core, sci = ({ln for ln in lists[k].splitlines()
                  if not ln.startswith('#')} for k in ('core', 'scientific'))
    # Worked out by hand from the world above, for the node's Python 3.12:
    # torch brings torch, filelock, typing-extensions and setuptools (the
    # build pin puts setuptools back); colorama is Windows only, sphinx an
    # extra; ruff is needed by nothing listed; mmcv itself is a source.
    assert core == {'mmengine==0.10.7', 'mmdet==3.3.0', 'mmrazor==1.0.0',
                    'pycocotools==2.0.8', 'joblib==1.4.2', 'pytest==8.3.3',
                    'rich==13.0', 'addict==2.4.0', 'cycler==0.12',
                    'pluggy==1.5', 'setuptools==69.5.1', 'wheel==0.45',
                    'ninja==1.13'}
    assert sci == {'numpy==1.26.4', 'scipy==1.13.1', 'shapely==2.2',
                   'opencv-python-headless==4.10.0.84', 'matplotlib==3.9.2',
                   'kiwisolver==1.5'}
    assert "# Left to the node's torch: filelock, torch, typing-extensions." \
        in lists['core']


def test_check_and_extras_name_what_differs(lock, world, tmp_path):
    locked = tmp_path / 'lock.txt'
    text = lock.lock_text(lock.installed(str(world)))
    tool = [sys.executable, osp.join(ROOT, 'tools', 'lock.py'),
            '--site', str(world), '--lock', str(locked)]
    locked.write_text(text)
    same = subprocess.run(tool + ['--check'], capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    assert 'holds exactly' in same.stdout and '(24 packages)' in same.stdout
    # The lock moves scipy, drops ruff, adds a package the site lacks.
    locked.write_text(text.replace('scipy==1.13.1', 'scipy==1.14.0')
                      .replace('ruff==0.17.6\n', '') + 'six==1.17.0\n')
    proc = subprocess.run(tool + ['--check'], capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'scipy: lock 1.14.0, installed 1.13.1' in proc.stderr
    assert 'ruff: lock (not in the lock), installed 0.17.6' in proc.stderr
    assert 'six: lock 1.17.0, installed (not installed)' in proc.stderr
    extras = subprocess.run(tool + ['--extras'], capture_output=True,
                            text=True)
    assert extras.stdout.split() == ['ruff']
    # A kept (CUDA) torch: its lines and what it needs are not compared.
    locked.write_text(text.replace('torch==2.13.0', 'torch==2.5.1')
                      .replace('filelock==3.0', 'filelock==3.9'))
    kept = subprocess.run(tool + ['--check', '--kept-torch'],
                          capture_output=True, text=True)
    assert kept.returncode == 0, kept.stderr
    plain = subprocess.run(tool + ['--check'], capture_output=True, text=True)
    assert plain.returncode == 1 and 'torch: lock 2.5.1' in plain.stderr
