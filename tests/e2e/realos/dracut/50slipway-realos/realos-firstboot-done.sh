#!/bin/bash
# After Ignition's files stage on the installed system's first boot: the next boot is not
# a first boot. UEFI (grub) tests /flatcar/first_boot: removed. BIOS (syslinux cannot
# test for a file): /syslinux/syslinux.cfg, which passes flatcar.first_boot=detected, is
# replaced by /syslinux/syslinux-subsequent.cfg. mtools: the FAT is never mounted.
set -euo pipefail
dev=/dev/disk/by-partlabel/EFI-SYSTEM
mdel -i "$dev" ::/flatcar/first_boot 2>/dev/null || true
mcopy -n -i "$dev" ::/syslinux/syslinux-subsequent.cfg /run/realos-syslinux.cfg
mcopy -o -i "$dev" /run/realos-syslinux.cfg ::/syslinux/syslinux.cfg
sync
mcopy -n -i "$dev" ::/syslinux/syslinux.cfg /run/realos-syslinux.check
cmp -s /run/realos-syslinux.cfg /run/realos-syslinux.check
echo "realos-firstboot-done: first-boot flags removed from $dev"
