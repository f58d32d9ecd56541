#!/usr/bin/env bash
# vm.sh WORKDIR I: the machine behind BMC number I in tests/e2e/provision.sh.
#
# The chassis script (crates/bmc/tests/support/ipmi/chassis-control.sh) runs this on
# "power on", in its own session, inside the test's network namespace, and kills its
# process group on "power off".
# It runs QEMU with the same hardware as tests/e2e/install.sh's run_vm (vm I: BIOS
# when I is even, UEFI when odd; a virtio NIC on tapI and a virtio disk), its disk and
# UEFI variables kept in WORKDIR/run across power cycles, and appends its serial
# console to WORKDIR/logs/vmI.serial.
#
# Boot order from the BMC's boot device (SLIPWAY_BOOT_DEVICE, set by the chassis
# script from IPMI's boot flags): pxe -> network first, then the disk; anything
# else -> the disk first, then the network. (QEMU ignores -boot order when devices
# carry bootindex, so the order is given by bootindex.)
#
# Each power-on and exit is recorded in WORKDIR/run/vmI.power: "on <epoch> boot=<dev>"
# and "exit <epoch> rc=<QEMU status>|killed". QEMU exits by itself when the test OS powers off.
set -u
W=$1
i=$2
VM_TIMEOUT=${VM_TIMEOUT:-400}
boot=${SLIPWAY_BOOT_DEVICE:-default}
mac=$(printf '52:54:00:99:%02x:%02x' $((i / 256)) $((i % 256)))
fwargs=() nicopt="" mem=384 fw=bios
[ $((i % 2)) = 1 ] && fw=uefi
if [ "$fw" = uefi ]; then
  mem=512
  [ -f "$W/run/vm$i.vars.fd" ] || cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/run/vm$i.vars.fd"
  # shellcheck disable=SC2054  # commas are QEMU option syntax
  fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
          -drive if=pflash,format=raw,file="$W/run/vm$i.vars.fd")
  nicopt=",romfile="
  # OVMF would try IPv6 PXE/HTTP boot on the NIC before the disk.
  # shellcheck disable=SC2054
  fwargs+=(-fw_cfg name=opt/org.tianocore/IPv6Support,string=no)
fi
[ -f "$W/run/vm$i.disk" ] || truncate -s 256M "$W/run/vm$i.disk"
case $boot in
  pxe) net_index=1 disk_index=2 ;;
  *) net_index=2 disk_index=1 ;;
esac
echo "on $(date +%s.%N) boot=$boot fw=$fw" >>"$W/run/vm$i.power"
printf '\n=== vm.sh: power on, boot device %s (%s) ===\n' "$boot" "$fw" >>"$W/logs/vm$i.serial"
# Power off signals the whole process group (QEMU too): record it, after QEMU is gone.
trap 'echo "exit $(date +%s.%N) rc=killed" >>"$W/run/vm$i.power"; exit 143' TERM INT HUP
# --foreground: stay in this process group, which the chassis script signals.
timeout --foreground --kill-after=5 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg -m "$mem" -nodefaults -nographic -monitor none "${fwargs[@]}" \
    -netdev tap,id=n0,ifname="tap$i",script=no,downscript=no \
    -device "virtio-net-pci,netdev=n0,mac=$mac$nicopt,bootindex=$net_index" \
    -drive "file=$W/run/vm$i.disk,if=none,id=d0,format=raw" \
    -device "virtio-blk-pci,drive=d0,bootindex=$disk_index" \
    -serial stdio -pidfile "$W/run/vm$i.pid" \
    </dev/null 2>>"$W/logs/vm$i.qemu.err" |
  tr -d '\r' | sed -u 's/\x1b\[[0-9;?=]*[A-Za-z]//g' >>"$W/logs/vm$i.serial"
rc=${PIPESTATUS[0]}
echo "exit $(date +%s.%N) rc=$rc" >>"$W/run/vm$i.power"
exit "$rc"
