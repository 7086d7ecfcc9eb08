#!/usr/bin/env bash
# On a connected machine: download what tools/offline/install.sh needs to
# install mmkd's stack on an air-gapped GPU node that has only its own CUDA
# torch (docs/gpu.md). Wheels for the NODE's Python and platform (not this
# machine's), exactly the pins of tools/offline/core.txt (+ scientific.txt
# unless --core-only), no dependency resolution (--no-deps: the lists are
# complete, tests/test_gpu_check.py checks it), plus mmcv 2.1.0's source.
#
#   bash tools/offline/fetch.sh                        # for Python 3.12, x86_64
#   bash tools/offline/fetch.sh --python-version 3.11 --arch aarch64
#   bash tools/offline/fetch.sh --core-only --dry-run  # print the pip commands
#
# Options: --dest DIR (default offline/, ignored by git), --python-version
# X.Y (default 3.12), --arch x86_64|aarch64, --glibc 2.NN (newest manylinux
# the node's glibc runs; default 2.28), --core-only (the node already has
# numpy, scipy, cv2, matplotlib, shapely), --pip CMD (default: python3 -m
# pip), --dry-run (print, download nothing).
# Sizes for Python 3.12 x86_64: core 9 MiB + mmcv source 0.5 MiB; the
# scientific stack 126 MiB more.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tools/offline
DEST=offline
PYVER=3.12
ARCH=x86_64
GLIBC=2.28
CORE_ONLY=0
DRY=0
PIP=${MMKD_PIP:-python3 -m pip}

while [[ $# -gt 0 ]]; do
  case $1 in
    --dest) DEST=$2; shift 2 ;;
    --python-version) PYVER=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --glibc) GLIBC=$2; shift 2 ;;
    --core-only) CORE_ONLY=1; shift ;;
    --pip) PIP=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "fetch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $PYVER =~ ^3\.[0-9]+$ ]]; then
  echo "fetch.sh: --python-version $PYVER: give MAJOR.MINOR, e.g. 3.12" >&2
  exit 2
fi
if ! [[ $GLIBC =~ ^2\.[0-9]+$ ]]; then
  echo "fetch.sh: --glibc $GLIBC: give 2.NN, e.g. 2.28 (ldd --version on the node)" >&2
  exit 2
fi
abi=cp${PYVER/./}

# pip takes the platform tags literally (a manylinux_2_28 tag does not
# admit older manylinux wheels), so every manylinux tag the node's glibc runs
# is named: manylinux_2_5 .. _2_NN and the legacy aliases.
platforms=()
for minor in $(seq "${GLIBC#2.}" -1 5); do
  platforms+=(--platform "manylinux_2_${minor}_$ARCH")
done
platforms+=(--platform "manylinux2014_$ARCH" --platform "manylinux2010_$ARCH"
            --platform "manylinux1_$ARCH")

files=("$HERE/core.txt")
[[ $CORE_ONLY == 1 ]] || files+=("$HERE/scientific.txt")
lists=()
for f in "${files[@]}"; do lists+=(-r "$f"); done

wheels=($PIP download --disable-pip-version-check --no-deps
        --only-binary=:all: --python-version "$PYVER" --implementation cp
        --abi "$abi" --abi abi3 --abi none "${platforms[@]}"
        -d "$DEST" "${lists[@]}")
# mmcv 2.1.0 is published as source only; install.sh builds it on the node.
source_=($PIP download --disable-pip-version-check --no-deps
         --no-binary=:all: -d "$DEST" mmcv==2.1.0)

if [[ $DRY == 1 ]]; then
  printf '%q ' "${wheels[@]}"; echo
  printf '%q ' "${source_[@]}"; echo
  exit 0
fi
mkdir -p "$DEST"
"${wheels[@]}"
"${source_[@]}"
# What install.sh installs, and for which node the wheels are.
grep -hv '^\s*#' "${files[@]}" | grep . > "$DEST/requirements.txt"
printf 'python=%s\narch=%s\nglibc=%s\ncore_only=%s\n' \
  "$PYVER" "$ARCH" "$GLIBC" "$CORE_ONLY" > "$DEST/FETCHED"
echo "fetch.sh: $(du -sh "$DEST" | cut -f1) in $DEST/ for Python $PYVER" \
  "($ARCH, glibc >= $GLIBC); copy the checkout with it to the node and run" \
  "bash tools/gpu_check.sh there"
