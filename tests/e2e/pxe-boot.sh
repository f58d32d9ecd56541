#!/usr/bin/env bash
# End-to-end network boot with slipway as the ONLY DHCP/TFTP/HTTP server: QEMU VMs
# (TCG) with SeaBIOS + iPXE ROM (BIOS) and OVMF's own PXE client (UEFI) boot from
# `slipway serve` in a private network namespace, driven by a real cluster file:
#
#   firmware DHCP (slipway) -> TFTP undionly.kpxe / snponly.efi (slipway)
#   -> iPXE DHCP (slipway: chain URL) -> HTTP /boot.ipxe -> /ipxe/<mac>.ipxe (slipway)
#   -> HTTP kernel + initrd from the mirror -> Linux -> udhcpc (slipway: reserved IP)
#   -> wget cfg=<its own config URL> (slipway renders the node's template) -> poweroff
#
# Adapted from shared/reference/pxe-e2e-dnsmasq.sh (its pitfalls apply). dnsmasq still
# runs, RA-only (no DHCP, no DNS, no TFTP), because iPXE waits ~13 s for an IPv6 router
# advertisement otherwise: slipway does not send RAs yet.
#
#   tests/e2e/pxe-boot.sh                  # vm0 BIOS, vm1 UEFI (OVMF native PXE)
#   NVMS=4 tests/e2e/pxe-boot.sh           # even VMs BIOS, odd VMs UEFI
#   SLIPWAY=target/release/slipway ...     # which binary (default target/debug/slipway)
#
# Exit 0 only if every VM got its reserved address and printed its OWN config.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
W=${W:-/tmp/slipway-e2e-$$}
NS=${NS:-slw-e2e-$$}
NVMS=${NVMS:-2}
VM_TIMEOUT=${VM_TIMEOUT:-240}
SLIPWAY=${SLIPWAY:-$ROOT/target/debug/slipway}
SUBNET=10.99.0
SRV=$SUBNET.1
HTTP_PORT=8080
KFLAVOR=cloud-amd64

log() { printf '[pxe-boot %s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh
need_root_and_binary
for f in /usr/lib/ipxe/qemu/pxe-virtio.rom /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/snponly.efi \
         /usr/share/OVMF/OVMF_CODE_4M.fd /usr/bin/qemu-system-x86_64 /bin/busybox; do
  [ -e "$f" ] || { log "missing $f (scripts/test installs qemu-system-x86, ovmf, ipxe, ipxe-qemu, busybox-static)"; exit 1; }
done
command -v dnsmasq >/dev/null || { log "missing dnsmasq (dnsmasq-base) for the RA"; exit 1; }

mkdir -p "$W"/{dl,www,run,logs,state}

# ---------------------------------------------------------------- kernel (Debian package, unpacked)
KVER=${KVER:-$(apt-cache depends "linux-image-$KFLAVOR" 2>/dev/null | awk '/Depends: linux-image-/{sub("linux-image-","",$2); print $2; exit}')}
[ -n "$KVER" ] || { log "cannot resolve linux-image-$KFLAVOR (apt-get update?)"; exit 1; }
KROOT=$W/linux-image-$KVER
if [ ! -f "$KROOT/boot/vmlinuz-$KVER" ]; then
  log "downloading linux-image-$KVER"
  (cd "$W/dl" && apt-get download "linux-image-$KVER" >/dev/null 2>&1)
  mkdir -p "$KROOT" && dpkg -x "$W"/dl/linux-image-"$KVER"_*.deb "$KROOT"
fi
KMOD=$KROOT/lib/modules/$KVER/kernel

# ---------------------------------------------------------------- initramfs (busybox)
R=$W/initramfs-root
rm -rf "$R"; mkdir -p "$R"/{bin,lib/modules,etc,proc,sys,dev,tmp}
cp /bin/busybox "$R/bin/busybox"; ln -s busybox "$R/bin/sh"
for m in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_modern_dev.ko \
         drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko net/core/failover.ko \
         drivers/net/net_failover.ko drivers/net/virtio_net.ko; do
  [ -f "$KMOD/$m" ] && cp "$KMOD/$m" "$R/lib/modules/"
done
cat > "$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
cfg=""
for arg in $(cat /proc/cmdline); do case "$arg" in cfg=*) cfg="${arg#cfg=}";; esac; done
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
ip link set lo up; ip link set eth0 up
i=0; while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if udhcpc -i eth0 -n -q -t 10 -T 2 -s /bin/udhcpc.script; then
  echo "E2E: DHCP OK $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
  if [ -n "$cfg" ] && timeout 20 wget -q -O /tmp/cfg "$cfg"; then
    echo "E2E: CONFIG BEGIN ($cfg)"; cat /tmp/cfg; echo "E2E: CONFIG END"
    echo "E2E: RESULT=PASS"
  else
    echo "E2E: RESULT=FAIL wget '$cfg'"
  fi
else
  echo "E2E: RESULT=FAIL dhcp"
fi
poweroff -f
INIT
cat > "$R/bin/udhcpc.script" <<'SCRIPT'
#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip -4 addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
SCRIPT
chmod +x "$R/init" "$R/bin/udhcpc.script"
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > "$W/www/initrd.gz"
cp "$KROOT/boot/vmlinuz-$KVER" "$W/www/vmlinuz"

# ---------------------------------------------------------------- the cluster file
cat > "$W/node.cfg.j2" <<'TPL'
hostname={{ node.hostname }}
role=e2e-test
ip={{ node.ip }}
TPL
{
  cluster_head "tests/e2e/pxe-boot.sh: a generic OS (a kernel + busybox initramfs) whose
# per-machine config is rendered by slipway from node.cfg.j2."
  cat <<EOF
os:
  distro: generic
  assets: $W/www
  kernel_args: [console=ttyS0, panic=-1, quiet, "cfg={{config_url}}"]
  generic: {kernel: vmlinuz, initrds: [initrd.gz], template: $W/node.cfg.j2}
EOF
  cluster_tail
  for ((i=0; i<NVMS; i++)); do
    printf '  - {mac: "%s", hostname: vm%d, ip: %s.%d, roles: [%s]}\n' "$(mac_of "$i")" "$i" "$SUBNET" $((11 + i)) "$(node_role "$i")"
  done
} > "$W/cluster.yaml"
check_cluster

# ---------------------------------------------------------------- network + servers
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  set +e
  stop_vms
  net_down "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
net_up "$NVMS"
start_slipway
wait_ready
sleep 0.5

# ---------------------------------------------------------------- VMs
run_vm() {
  local i=$1 mac fwargs=() nicopt="" mem=256 t0 t1 rc=0 fw=bios
  mac=$(mac_of "$i")
  [ $((i % 2)) = 1 ] && fw=uefi
  if [ "$fw" = uefi ]; then
    mem=512
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/run/vm$i.vars.fd"
    fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
            -drive if=pflash,format=raw,file="$W/run/vm$i.vars.fd")
    nicopt=",romfile="   # OVMF's own PXE client does the first DHCP + TFTP
  fi
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$VM_TIMEOUT" ip netns exec "$NS" qemu-system-x86_64 \
      -accel tcg -m "$mem" -nodefaults -nographic -no-reboot -monitor none "${fwargs[@]}" \
      -netdev tap,id=n0,ifname="tap$i",script=no,downscript=no \
      -device "virtio-net-pci,netdev=n0,mac=$mac$nicopt" \
      -boot n -serial stdio -pidfile "$W/run/vm$i.pid" \
      </dev/null 2>"$W/logs/vm$i.qemu.err" | tr -d '\r' | sed -u 's/\x1b\[[0-9;?=]*[A-Za-z]//g' >"$W/logs/vm$i.serial" || rc=$?
  t1=$(date +%s.%N)
  echo "$rc $(awk "BEGIN{print $t1 - $t0}") $fw" > "$W/run/vm$i.result"
}
log "booting $NVMS VM(s) through slipway, kernel $KVER, netns $NS"
T0=$(date +%s.%N)
JOBS=()
for ((i=0; i<NVMS; i++)); do run_vm "$i" & JOBS+=($!); done
for j in "${JOBS[@]}"; do wait "$j" || true; done
T1=$(date +%s.%N)

# ---------------------------------------------------------------- verdict
fail=0
for ((i=0; i<NVMS; i++)); do
  read -r rc secs fw < "$W/run/vm$i.result" || { rc=?; secs=0; fw=?; }
  s=$W/logs/vm$i.serial
  ok=PASS
  grep -q "slipway: vm$i on " "$s"                      || ok=FAIL   # iPXE ran slipway's script for this MAC
  grep -q "E2E: DHCP OK $SUBNET.$((11 + i))/24" "$s"     || ok=FAIL   # Linux got its reserved address
  grep -q 'E2E: RESULT=PASS' "$s"                        || ok=FAIL   # fetched its config
  grep -qx "hostname=vm$i" "$s"                          || ok=FAIL   # ... its OWN config
  [ "$rc" = 0 ] || ok=FAIL
  printf 'vm%-3s %s  fw=%-5s qemu_rc=%s  wall=%6.2fs\n' "$i" "$ok" "$fw" "$rc" "$secs"
  [ "$ok" = PASS ] || { fail=1; tail -n 30 "$s" | sed "s/^/  vm$i| /"; }
done
# The lifecycle saw each machine boot and fetch its install config (this test OS does
# not install to disk, so "installing" is as far as it goes).
ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" status "$W/cluster.yaml" --json > "$W/logs/status.json" || fail=1
for ((i=0; i<NVMS; i++)); do
  st=$(machine_state "$W/logs/status.json" "vm$i")
  [ "$st" = installing ] || { log "vm$i: lifecycle state '$st', expected 'installing'"; fail=1; }
done
ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" status "$W/cluster.yaml" | sed 's/^/  /'
[ "$fail" = 0 ] || { log "slipway log tail:"; tail -n 40 "$W/logs/slipway.log" >&2; }
printf 'TOTAL: %d VM(s) %s in %.2fs\n' "$NVMS" "$([ $fail = 0 ] && echo PASS || echo FAIL)" "$(awk "BEGIN{print $T1 - $T0}")"
exit $fail
