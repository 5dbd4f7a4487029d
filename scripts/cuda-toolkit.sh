#!/usr/bin/env bash
# A CUDA 12.x toolkit that can build for Pascal (sm_61, the GTX 1080 Ti) and newer cards, from
# Debian's non-free packages (trixie's CUDA 12.4), downloaded and unpacked into one folder:
# nothing is installed, no NVIDIA repository is needed and no GPU. Prints the folder (a
# CUDA_HOME: bin/nvcc, nvvm/, include/, lib64/) on its last line.
#
#   scripts/cuda-toolkit.sh [DIR]      # default: $PIFACE_CUDA_HOME or ~/.cache/piface/cuda-12.4
#
# A folder that already holds nvcc 12.x is reused (CI caches it). Why not PyPI: its cu12 nvcc
# wheels carry neither the nvcc driver nor cicc, and its full nvcc is 13.x, which starts at
# sm_75 (see ARCHITECTURE.md, "CUDA builds"). On a machine with NVIDIA's own CUDA 12.x, point
# CUDA_HOME at it instead; this script is for machines without.
set -euo pipefail

dest="${1:-${PIFACE_CUDA_HOME:-$HOME/.cache/piface/cuda-12.4}}"
if [ -x "$dest/bin/nvcc" ] && "$dest/bin/nvcc" --version 2>/dev/null | grep -q 'release 12\.'; then
  echo "$dest"
  exit 0
fi
for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "cuda-toolkit.sh needs $tool (a Debian or Ubuntu machine)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{state/lists/partial,cache/archives/partial,parts,prefs,debs,root}
# A private APT setup: Debian trixie's archive (the suite with CUDA 12.4), beside whatever the
# machine uses; the machine's own package state is only read.
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "cuda-toolkit.sh needs $keyring (package debian-archive-keyring)" >&2; exit 1; }
mirror="${PIFACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
echo "deb [signed-by=$keyring] $mirror trixie main contrib non-free" >"$work/sources.list"
cat >"$work/apt.conf" <<EOF
Dir::Etc::SourceList "$work/sources.list";
Dir::Etc::SourceParts "$work/parts";
Dir::Etc::PreferencesParts "$work/prefs";
Dir::State "$work/state";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$work/cache";
APT::Architecture "amd64";
APT::Sandbox::User "root";
EOF
export APT_CONFIG="$work/apt.conf"
echo "cuda-toolkit.sh: fetching Debian trixie's package lists" >&2
apt-get update -qq >&2

# The compiler (nvcc, cicc, ptxas, fatbinary, nvlink), the runtime headers and libraries that
# cudarc and candle link, and the header-only libraries candle's kernels include.
packages=(nvidia-cuda-toolkit nvidia-cuda-dev libcudart12 libnvvm4 libnvrtc12 libnvrtc-builtins12.4 libcurand10
  libcublas12 libcublaslt12 libcu++-dev libthrust-dev libcub-dev)
available=()
for p in "${packages[@]}"; do
  apt-cache show "$p" >/dev/null 2>&1 && available+=("$p")
done
echo "cuda-toolkit.sh: downloading ${available[*]}" >&2
(cd "$work/debs" && apt-get download -q "${available[@]}" >&2)
# Static libraries are most of the size and none is linked (cudarc and candle link the shared
# ones): they are not unpacked.
for deb in "$work"/debs/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/root" --exclude='*_static*.a' --exclude='./usr/share/doc/*'
done

# Assemble the CUDA_HOME layout nvcc and cudarc expect from Debian's split one: the driver and
# its helpers (cicc, the gcc wrappers that pick a supported host compiler, crt/) with the other
# tools in bin/, libdevice, the headers, the shared libraries with the libcuda stub for linking.
r="$work/root"
tk="$r/usr/lib/nvidia-cuda-toolkit"
staging="$dest.partial"
rm -rf "$staging"
mkdir -p "$staging"/{bin,nvvm,lib64,include}
for tool in "$r"/usr/bin/*; do
  [ "$(basename "$tool")" = nvcc ] || cp -a "$tool" "$staging/bin/" # Debian's nvcc is a wrapper script
done
cp -a "$tk"/bin/. "$staging/bin/"
rm -f "$staging/bin/nvcc.profile" # a link to /etc/nvcc.profile, with Debian's fixed paths
cp -a "$tk/libdevice" "$staging/nvvm/"
cp -a "$r/usr/include/." "$staging/include/"
cp -a "$r/usr/lib/x86_64-linux-gnu/." "$staging/lib64/"
# nvcc reads its paths from the nvcc.profile beside it; these are relative to that folder.
cat >"$staging/bin/nvcc.profile" <<'EOF'
TOP                = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
PATH              += $(_HERE_):
INCLUDES          += "-I$(TOP)/include" $(_SPACE_)
LIBRARIES         =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"
EOF
rm -rf "$dest"
mv "$staging" "$dest"
if ! "$dest/bin/nvcc" --version | grep -q 'release 12\.'; then
  echo "cuda-toolkit.sh: $dest/bin/nvcc is not a working CUDA 12 nvcc" >&2
  exit 1
fi
echo "$dest"
