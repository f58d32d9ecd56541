#!/bin/bash
# The installed system's first boot: copy the Ignition config flatcar-install stored on
# the ESP (/flatcar/config.ign) to /run/realos/config.ign for Ignition's `file` platform.
# (mtools reads the FAT without mounting it.) No config: Ignition's file platform then
# fails, and the boot stops in the emergency target, as Flatcar's does.
set -euo pipefail
dev=/dev/disk/by-partlabel/EFI-SYSTEM
mkdir -p /run/realos
if mcopy -n -i "$dev" ::/flatcar/config.ign /run/realos/config.ign 2>/run/realos/mcopy.err; then
    echo "realos-config: $(stat -c %s /run/realos/config.ign) bytes from $dev:/flatcar/config.ign sha256=$(sha256sum < /run/realos/config.ign | cut -d' ' -f1)"
else
    echo "realos-config: no /flatcar/config.ign on $dev: $(cat /run/realos/mcopy.err)" >&2
fi
