import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: `pip install -e` runs develop
    editable_wheel = None

HERE = osp.dirname(osp.abspath(__file__))
# What OpenMMLab packages ship in <package>/.mim so that `mmkd::` configs,
# `mim train mmkd ...` and `python -m mmkd train ...` work from a wheel. In
# the checkout mmkd/.mim holds symlinks to these (an editable install reads
# them there); a wheel gets copies.
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')


def read_requirements(path):
    with open(osp.join(HERE, path)) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


class BuildWithMim(build_py):
    """build_py that also copies configs/, tools/ and model-index.yml into
    the built package's .mim folder."""

    def run(self):
        super().run()
        mim = osp.join(self.build_lib, 'mmkd', '.mim')
        for item in MIM_ITEMS:
            src, dst = osp.join(HERE, item), osp.join(mim, item)
            if osp.islink(dst) or osp.isfile(dst):
                os.remove(dst)
            elif osp.isdir(dst):
                shutil.rmtree(dst)
            os.makedirs(mim, exist_ok=True)
            if osp.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                    '__pycache__', '*.pyc'))
            else:
                shutil.copyfile(src, dst)
        write_hook(self.build_lib)


# `mmkd::` names in any tool (see mmkd_config_scope.py): a .pth at the top of
# site-packages runs its `import` line at start-up.
def write_hook(folder):
    with open(osp.join(folder, 'mmkd_config_scope.pth'), 'w') as f:
        f.write('import mmkd_config_scope\n')


cmdclass = {'build_py': BuildWithMim}
if editable_wheel is not None:

    class EditableWithHook(editable_wheel):
        """``pip install -e``: the same start-up hook as a wheel (setuptools
        puts only its own finder in an editable wheel)."""

        def _run_build_commands(self, dist_name, unpacked_wheel, *args):
            out = super()._run_build_commands(dist_name, unpacked_wheel,
                                              *args)
            write_hook(unpacked_wheel)
            return out

    if not hasattr(editable_wheel, '_run_build_commands'):
        raise RuntimeError(
            'setuptools changed its editable_wheel command: mmkd cannot add '
            'its start-up hook (mmkd_config_scope.pth) to an editable '
            'install; install with setuptools<81 or from a wheel')
    cmdclass['editable_wheel'] = EditableWithHook


with open(osp.join(HERE, 'README.md')) as f:
    long_description = f.read()

setup(
    name='mmkd',
    version='0.1.0',
    description='Projector-based knowledge distillation (SRD, VkD) for '
    'MMDetection detectors through MMRazor',
    long_description=long_description,
    long_description_content_type='text/markdown',
    # mmkd: the library; mmkd_lab: the demo, the benchmark and the built-in
    # data (shipped so that `mmkd demo` / `mmkd benchmark` run from a wheel;
    # nothing in mmkd imports it).
    packages=find_packages(include=['mmkd', 'mmkd.*', 'mmkd_lab',
                                    'mmkd_lab.*']),
    py_modules=['mmkd_config_scope'],
    cmdclass=cmdclass,
    entry_points={'console_scripts': ['mmkd = mmkd.__main__:main']},
    python_requires='>=3.8',
    # Ranges, so that `pip install` into a cluster's environment keeps its
    # CUDA torch and its mmcv build. requirements/runtime.txt holds the exact
    # versions checked together; tools/install.sh installs those.
    install_requires=[
        'torch>=2.0', 'mmcv>=2.0.0rc4,<2.2.0', 'mmengine>=0.10.0,<0.11',
        'mmdet>=3.3.0,<3.4', 'mmrazor>=1.0.0', 'numpy<2', 'pycocotools',
        'joblib', 'matplotlib'
    ],
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    license='Apache-2.0',
    license_files=['LICENSE'],
)
