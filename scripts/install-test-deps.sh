#!/usr/bin/env bash
# Installs everything Ferry's test suite needs on a fresh Debian machine (run as root):
# Debian packages for the real parts the tests drive, then the npm packages from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  postgresql        # throwaway PostgreSQL servers (initdb/pg_ctl) for every store and engine test
  qemu-utils        # qemu-img: qcow2 images, image checks and compares
  rsync             # bench/replication: the rsync daemon baselines
  e2fsprogs         # filefrag: data extents of sparse disks (FIEMAP) for the block reader
  util-linux        # losetup: the block reader's block-device test
  perl              # the sim compute driver finds holes with SEEK_DATA/SEEK_HOLE through perl
  skopeo            # ContainerImage tests: skopeo inspect/copy of the image Ferry pushed
  umoci             # ContainerImage tests: umoci unpack --rootless of the pushed image
  docker-registry   # ContainerImage tests: a real Docker Registry v2 on 127.0.0.1
)

missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
