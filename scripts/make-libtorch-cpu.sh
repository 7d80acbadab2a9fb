#!/usr/bin/env bash
# Build a CPU-only LIBTORCH directory for `cargo build --features tch` from PyPI wheels.
#
# Why: burn-tch 0.22 (torch-sys 0.22) needs libtorch 2.9.0. Its build script downloads it from
# download.pytorch.org unless LIBTORCH is set, and that host may be unreachable. PyPI has no
# CPU-only x86_64 torch wheel: the torch 2.9.0 wheel is the CUDA 12.8 build, and even
# libtorch_cpu.so links libcudart.so.12 and libcupti.so.12. So this script takes
#   torch==2.9.0 (~900 MB) + nvidia-cuda-runtime-cu12 + nvidia-cuda-cupti-cu12 (small),
# keeps libc10, libtorch_cpu, libtorch, libgomp, libcudart and libcupti plus the headers,
# removes libtorch.so's dependency on libtorch_cuda.so (1 GB, needs cuDNN/cuBLAS/NCCL) with
# patchelf, and sets every rpath to $ORIGIN. Result: ~490 MB, works on machines without a GPU.
#
# Usage: scripts/make-libtorch-cpu.sh [DEST]            (default DEST: ./libtorch, git-ignored)
# Then:  export LIBTORCH=$PWD/libtorch LD_LIBRARY_PATH=$PWD/libtorch/lib
#        cargo build --release --features tch && trim train --backend tch
# Needs: python3 with pip, unzip, patchelf (apt-get install patchelf). Idempotent: an existing
# complete DEST is kept.
#
# For CUDA, skip this script: install the full wheel set and let torch-sys ask Python:
#   python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.9.0
#   export LIBTORCH_USE_PYTORCH=1 PATH=$PWD/.venv-torch/bin:$PATH
#   export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
#   cargo build --release --features tch && trim train --backend tch-cuda:0
set -euo pipefail

TORCH_VERSION=2.9.0   # must match torch-sys 0.22.0 (TORCH_VERSION)
CUDA_WHEEL_VERSION=12.8.90
DEST=${1:-libtorch}

if [[ -f "$DEST/build-version" && "$(cat "$DEST/build-version")" == "$TORCH_VERSION" \
      && -f "$DEST/lib/libtorch_cpu.so" ]]; then
    echo "$DEST already holds libtorch $TORCH_VERSION (CPU)"
    exit 0
fi

for tool in python3 unzip patchelf; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (patchelf: apt-get install patchelf)" >&2; exit 1; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== downloading wheels (torch $TORCH_VERSION ~900 MB, 2 small nvidia runtime wheels)"
# The nvidia wheels carry only the manylinux2014 tag: both platform tags are needed.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$WORK/wheels" \
    "torch==$TORCH_VERSION" \
    "nvidia-cuda-runtime-cu12==$CUDA_WHEEL_VERSION" \
    "nvidia-cuda-cupti-cu12==$CUDA_WHEEL_VERSION"

echo "== unpacking"
mkdir -p "$WORK/x"
unzip -q -o "$WORK"/wheels/torch-*.whl 'torch/lib/*' 'torch/include/*' -d "$WORK/x"
for w in "$WORK"/wheels/nvidia_*.whl; do
    unzip -q -o "$w" 'nvidia/*/lib/*' -d "$WORK/x"
done

STAGE="$DEST.tmp.$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/lib"
mv "$WORK/x/torch/include" "$STAGE/include"
for so in libc10.so libtorch_cpu.so libtorch.so libgomp.so.1; do
    src=$(find "$WORK/x/torch/lib" -maxdepth 1 -name "$so*" | head -n1)
    [[ -n "$src" ]] || { echo "error: $so not in the torch wheel" >&2; exit 1; }
    cp "$src" "$STAGE/lib/$so"
done
# libgomp may be vendored under a hashed name that libtorch_cpu NEEDs: copy those as well.
find "$WORK/x/torch/lib" -maxdepth 1 -name 'libgomp*.so*' -exec cp {} "$STAGE/lib/" \;
find "$WORK/x/nvidia" -name 'libcudart.so.12*' -exec cp {} "$STAGE/lib/libcudart.so.12" \; -quit
find "$WORK/x/nvidia" -name 'libcupti.so.12*' -exec cp {} "$STAGE/lib/libcupti.so.12" \; -quit
for so in libcudart.so.12 libcupti.so.12; do
    [[ -f "$STAGE/lib/$so" ]] || { echo "error: $so not found in the nvidia wheels" >&2; exit 1; }
done

echo "== patching (drop libtorch_cuda.so, rpath \$ORIGIN)"
patchelf --remove-needed libtorch_cuda.so "$STAGE/lib/libtorch.so"
for f in "$STAGE"/lib/*.so*; do
    patchelf --set-rpath '$ORIGIN' "$f"
done
echo "$TORCH_VERSION" > "$STAGE/build-version"

rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "== done: $(du -sh "$DEST" | cut -f1) in $DEST"
echo "export LIBTORCH=$(cd "$DEST" && pwd) LD_LIBRARY_PATH=$(cd "$DEST" && pwd)/lib"
