#!/bin/bash
# The live system's root, before sysroot.mount (an overlay): the squashfs carried in the
# initramfs as the lower layer, a tmpfs for the upper one.
set -euo pipefail
sq=/realos/rootfs.squashfs
[ -f "$sq" ] || { echo "realos-live-root: no $sq in the initramfs" >&2; exit 1; }
mkdir -p /run/realos/lower /run/realos/rw
modprobe -a loop squashfs overlay 2>/dev/null || true
mount -t squashfs -o ro,loop "$sq" /run/realos/lower
mount -t tmpfs -o mode=0755,size=75% realos-rw /run/realos/rw
mkdir -p /run/realos/rw/upper /run/realos/rw/work
echo "realos-live-root: $sq ($(stat -c %s "$sq") bytes) under a tmpfs"
