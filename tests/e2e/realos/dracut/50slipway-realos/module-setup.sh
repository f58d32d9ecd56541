#!/bin/bash
# dracut module of slipway's real-init test OS (tests/e2e/realos/): makes Debian's
# ignition dracut module (30ignition) behave like Flatcar's initramfs.
#  - replaces ignition-generator with realos-generator: Flatcar's kernel arguments
#    (flatcar.first_boot=1|detected, flatcar.oem.id=) map to Ignition's
#    (ignition.firstboot, ignition.platform.id): `metal` when ignition.config.url= is
#    given (the PXE/live system), else `file` over the config flatcar-install stored on
#    the ESP (the installed system);
#  - the live system (no root=): /sysroot is an overlay of a tmpfs over the squashfs
#    root carried in the initramfs (/realos/rootfs.squashfs), DHCP by networkd;
#  - the installed system: reads /flatcar/config.ign from the ESP before Ignition runs
#    and, after Ignition's files stage, removes the first-boot flags from the ESP.
# REALOS_FLAVOR=live|installed (environment of the dracut run) picks the flavour.

check() { return 255; }

depends() { echo ignition systemd-networkd; }

install() {
    local flavor=${REALOS_FLAVOR:?REALOS_FLAVOR=live|installed}
    inst_multiple mcopy mdel mdir cmp mount umount losetup sed cat mkdir chmod cut sha256sum stat tail journalctl
    # over 30ignition's generator (this module is installed after it)
    # (dracut's inst_* never overwrite a file: copy it, whichever module came first)
    mkdir -p "$initdir$systemdutildir/system-generators"
    cp -f "$moddir/realos-generator" "$initdir$systemdutildir/system-generators/ignition-generator"
    chmod 755 "$initdir$systemdutildir/system-generators/ignition-generator"
    inst_script "$moddir/realos-live-root.sh" /usr/sbin/realos-live-root
    inst_multiple tr grep sync
    inst_script "$moddir/setfiles" /usr/sbin/setfiles
    inst_script "$moddir/realos-config.sh" /usr/sbin/realos-config
    inst_script "$moddir/realos-firstboot-done.sh" /usr/sbin/realos-firstboot-done
    inst_simple "$moddir/realos-live-root.service" "$systemdsystemunitdir/realos-live-root.service"
    inst_simple "$moddir/realos-config.service" "$systemdsystemunitdir/realos-config.service"
    inst_simple "$moddir/realos-firstboot-done.service" "$systemdsystemunitdir/realos-firstboot-done.service"
    inst_simple "$moddir/realos-failure-dump.service" "$systemdsystemunitdir/realos-failure-dump.service"
    mkdir -p "$initdir$systemdsystemunitdir/emergency.target.wants"
    ln_r "$systemdsystemunitdir/realos-failure-dump.service" "$systemdsystemunitdir/emergency.target.wants/realos-failure-dump.service"
    if [ "$flavor" = live ]; then
        # the config URL needs the network: networkd (DHCP, realos-generator's .network)
        inst_simple "$moddir/realos-ignition-fetch.conf" "$systemdsystemunitdir/ignition-fetch.service.d/10-realos.conf"
    fi
    echo "REALOS_FLAVOR=$flavor" > "$initdir/etc/realos-flavor"
    # mtools converts FAT names through iconv (codepage 850)
    inst_multiple -o /usr/lib/x86_64-linux-gnu/gconv/IBM850.so /usr/lib/x86_64-linux-gnu/gconv/IBM437.so \
        /usr/lib/x86_64-linux-gnu/gconv/gconv-modules /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache \
        "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/*.conf"
    # mtools refuses a FAT whose geometry it cannot check
    echo 'mtools_skip_check=1' > "$initdir/etc/mtools.conf"
}
