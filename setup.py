from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


setup(
    name='mmkd',
    version='0.1.0',
    description='Projector-based knowledge distillation (SRD, VkD) for '
    'MMDetection FPN detectors through MMRazor',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkd', 'mmkd.*']),
    python_requires='>=3.8',
    # torch and mmcv are listed with the pins they were checked with;
    # tools/install.sh installs them first (mmcv must be built against the
    # installed torch) and then installs mmkd with --no-deps, so a cluster's
    # existing CUDA torch is kept.
    install_requires=['torch==2.13.0', 'mmcv==2.1.0'] +
    read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    license='Apache-2.0',
)
