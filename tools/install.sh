#!/usr/bin/env bash
# The one install path of mmkd (README, `make demo`, `make test`, CI).
#
# Creates .venv/ (ignored by git), installs torch 2.13.0 (the CPU build; a CUDA
# torch already in .venv, or in the base Python when MMKD_SYSTEM_TORCH=1, is
# kept), builds mmcv 2.1.0 with its ops from source without build isolation
# (CUDA ops when CUDA is available, for the GPUs present unless
# TORCH_CUDA_ARCH_LIST says otherwise), installs the rest from
# requirements/runtime.txt and mmkd in editable mode. A stamp makes a second
# run take seconds; delete .venv/ to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${MMKD_VENV:-$ROOT/.venv}
PY=${MMKD_BASE_PYTHON:-python3}
TORCH_SPEC=${MMKD_TORCH_SPEC:-torch==2.13.0}
MMCV_VERSION=2.1.0
STAMP=$VENV/.mmkd-installed

say() { printf '[mmkd install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

want=$(cat requirements/*.txt setup.py tools/install.sh | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
  exit 0
fi

if [[ ! -x $VENV/bin/python ]]; then
  venv_args=()
  if [[ ${MMKD_SYSTEM_TORCH:-0} == 1 ]]; then
    # Keep the cluster's CUDA torch: see it through the venv.
    venv_args+=(--system-site-packages)
  fi
  say "creating $VENV"
  "$PY" -m venv "${venv_args[@]}" "$VENV"
fi
VPY=$VENV/bin/python
pip_() { "$VPY" -m pip install --disable-pip-version-check "$@"; }

if "$VPY" -c 'import torch, sys; sys.exit(0 if int(torch.__version__.split(".")[0]) >= 2 else 1)' 2>/dev/null; then
  say "keeping installed torch $("$VPY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')"
else
  say "installing $TORCH_SPEC"
  pip_ -q "$TORCH_SPEC" numpy==1.26.4
fi

if "$VPY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' else 1)" 2>/dev/null; then
  say "mmcv $MMCV_VERSION with ops already installed"
else
  cuda=$("$VPY" -c 'import torch; print(int(torch.cuda.is_available() and torch.version.cuda is not None))')
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if [[ $cuda == 1 ]]; then
    export FORCE_CUDA=1
    # Only the architectures of the GPUs this machine has (the default list
    # compiles every one torch supports: several times the build time). Set
    # TORCH_CUDA_ARCH_LIST yourself to build for other nodes' GPUs too.
    if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]]; then
      TORCH_CUDA_ARCH_LIST=$("$VPY" -c 'import torch; n = torch.cuda.device_count(); print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(n)})))')
      export TORCH_CUDA_ARCH_LIST
    fi
    say "CUDA ops for architectures $TORCH_CUDA_ARCH_LIST"
  fi
  # mmcv 2.1.0's setup.py imports pkg_resources and predates setuptools 70;
  # torch wants setuptools >= 77: build with the old one, restore below.
  # (pip warns about torch's setuptools requirement meanwhile: expected.)
  pip_ -q "setuptools<70" wheel ninja numpy==1.26.4 2>&1 | grep -v "setuptools>=77\|dependency resolver\|dependency conflicts" || true
  pip_ -q mmengine==0.10.7 opencv-python==4.10.0.84 addict packaging Pillow pyyaml yapf
  say "building mmcv $MMCV_VERSION with ops (CUDA ops: $cuda, $MAX_JOBS jobs): about 15 min on 2 cores the first time; pip caches the wheel"
  # Progress: ninja prints [done/total] for every compiled file.
  pip_ -v --no-build-isolation "mmcv==$MMCV_VERSION" 2>&1 \
    | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|Successfully|error:|Error' \
    | sed -u -E 's/^\s*(\[[0-9]+\/[0-9]+\]).*/  mmcv build \1/' || true
  "$VPY" -c 'import mmcv.ops' || { say "mmcv build failed: run '$VPY -m pip install -v --no-build-isolation mmcv==$MMCV_VERSION' to see the compiler error"; exit 1; }
fi

say "installing runtime requirements and mmkd (editable)"
# setuptools 77-80: what torch asks for, still with the pkg_resources that
# mmengine uses at run time (to find mmdet's configs).
pip_ -q "setuptools>=77.0.3,<81" -r requirements/runtime.txt -r requirements/tests.txt
pip_ -q --no-deps --no-build-isolation -e .
"$VPY" -c 'import mmkd; from mmrazor.models import FpnTeacherDistill' 
echo "$want" > "$STAMP"
say "done: $VENV"
