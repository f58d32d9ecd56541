#!/usr/bin/env bash
# Boots the real-init test OS's INSTALLED disk image directly in QEMU (TCG, no network
# boot, no slipway), with an Ignition config stored where flatcar-install stores it (the
# ESP's /flatcar/config.ign, written with mtools), to prove on each firmware that
#   bios: SeaBIOS -> gptmbr.bin -> syslinux (firstboot.cfg) -> kernel + dracut initramfs
#   uefi: OVMF -> \EFI\BOOT\BOOTX64.EFI (grub, /flatcar/first_boot) -> the same
# the initramfs runs the real Ignition engine (file platform) over that config on the
# first boot, and systemd then applies it: the report unit prints
#   E2E: IGNITION result={...}   E2E: HOSTNAME static=<the config's>   E2E: READY hostname=...
# With BOOTS=2 the disk is booted again and must NOT run Ignition (the flags are gone).
#
#   tests/e2e/realos/boot-disk.sh IMAGE bios|uefi
#       IMAGE: flatcar_production_image.bin.bz2 (or the .bin); never modified
#   CONFIG=FILE      store FILE (Ignition JSON) instead of the stub (e.g. slipway's
#                    `render --artifact installed`; its network file must match MAC=)
#   MAC=52:54:00:12:34:56   the NIC's MAC (the stub's network file matches it)
#   EXPECT_HOSTNAME=NAME    READY must print it (default: the stub's "realos-stub")
#   BOOTS=1|2  TIMEOUT=600 (per boot)  KEEP=1 (keep the work directory)
set -euo pipefail
log() { printf '[realos/boot-disk %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# = 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
IMAGE=$1 FW=$2
TIMEOUT=${TIMEOUT:-600} BOOTS=${BOOTS:-1} MAC=${MAC:-52:54:00:12:34:56}
case "$FW" in bios|uefi) ;; *) die "FW must be bios or uefi, not '$FW'" ;; esac
[ -f "$IMAGE" ] || die "no image $IMAGE (build it with tests/e2e/realos/build.sh MIRROR VERSION)"
command -v qemu-system-x86_64 >/dev/null || die "missing qemu-system-x86_64 (qemu-system-x86)"

W=$(mktemp -d "${TMPDIR:-/tmp}/slipway-realos-boot.XXXXXX")
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$? p
  set +e
  if [ -f "$W/qemu.pid" ]; then
    p=$(cat "$W/qemu.pid")
    [ "$(ps -o comm= -p "$p" 2>/dev/null)" = qemu-system-x86 ] && kill "$p"
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then log "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DISK=$W/disk.img
case "$IMAGE" in *.bz2) lbzip2 -dc "$IMAGE" > "$DISK" 2>/dev/null || bzip2 -dc "$IMAGE" > "$DISK" ;; *) cp "$IMAGE" "$DISK" ;; esac
truncate -s +256M "$DISK"
if [ -n "${CONFIG:-}" ]; then
  cp "$CONFIG" "$W/config.ign"
  EXPECT_HOSTNAME=${EXPECT_HOSTNAME:-}
else
  # slipway's shapes: hostname, a static networkd file by MAC, a user with a key, files
  # with modes (a 0600 key under /etc/kubernetes/pki), a ready unit enabled by preset
  b64() { printf '%s' "$1" | base64 -w0; }
  net="[Match]\nMACAddress=$MAC\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n"
  cat > "$W/config.ign" <<EOF
{
  "ignition": {"version": "3.3.0"},
  "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderStubKey0000000000000000000000000 stub@realos"]}]},
  "storage": {"files": [
    {"path": "/etc/hostname", "mode": 420, "overwrite": true, "contents": {"source": "data:;base64,$(b64 $'realos-stub\n')"}},
    {"path": "/etc/systemd/network/00-slipway.network", "mode": 420, "overwrite": true, "contents": {"source": "data:;base64,$(printf "$net" | base64 -w0)"}},
    {"path": "/etc/kubernetes/pki/ca.key", "mode": 384, "overwrite": true, "contents": {"source": "data:,stub%20key%0A"}},
    {"path": "/etc/kubernetes/pki/ca.crt", "mode": 420, "overwrite": true, "contents": {"source": "data:,stub%20cert%0A"}}
  ]},
  "systemd": {"units": [
    {"name": "slipway-ready.service", "enabled": true, "contents": "[Unit]\\nDescription=stub ready\\nAfter=network-online.target\\nWants=network-online.target\\n\\n[Service]\\nType=oneshot\\nExecStart=/usr/bin/mkdir -p /var/lib/slipway\\nExecStart=/usr/bin/touch /var/lib/slipway/ready\\n\\n[Install]\\nWantedBy=multi-user.target\\n"}
  ]}
}
EOF
  EXPECT_HOSTNAME=${EXPECT_HOSTNAME:-realos-stub}
fi
start=$(partx -g -o START,NAME "$DISK" | awk '$2 == "EFI-SYSTEM" {print $1; exit}')
[ -n "$start" ] || die "$IMAGE has no EFI-SYSTEM partition"
export MTOOLS_SKIP_CHECK=1
mcopy -o -i "$DISK@@$((start * 512))" "$W/config.ign" ::/flatcar/config.ign
SUM=$(sha256sum < "$W/config.ign" | cut -d' ' -f1)

fwargs=()
if [ "$FW" = uefi ]; then
  cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/vars.fd"
  # shellcheck disable=SC2054  # commas inside QEMU's option values
  fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
          -drive if=pflash,format=raw,file="$W/vars.fd")
fi
fail=0
for ((boot = 1; boot <= BOOTS; boot++)); do
  S=$W/serial.$boot.log
  log "boot $boot/$BOOTS: $IMAGE ($FW, TCG, limit ${TIMEOUT}s), config sha256=$SUM"
  T0=$EPOCHREALTIME rc=0
  timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 \
      -accel tcg -m 1024 -nodefaults -nographic -no-reboot -monitor none "${fwargs[@]}" \
      -drive file="$DISK",if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0,bootindex=1 \
      -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,mac="$MAC",romfile= \
      -serial stdio -pidfile "$W/qemu.pid" </dev/null 2>"$W/qemu.err" |
    sed -u 's/\r//g; s/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\x1bc//g' |
    while IFS= read -r line; do
      t=$(awk "BEGIN{printf \"%7.2f\", $EPOCHREALTIME - $T0}")
      printf '[%s] %s\n' "$t" "$line" >> "$S"
      case "$line" in *E2E:*|*"slipway real-init"*|*realos-*|*FAILED*|*Ignition*) printf '  [%s] %s\n' "$t" "$line" >&2 ;; esac
    done || rc=$?
  secs=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T0}")
  ok=1
  grep -q 'E2E: READY hostname=' "$S" || { log "boot $boot: no 'E2E: READY'"; ok=0; }
  [ -z "$EXPECT_HOSTNAME" ] || grep -q "E2E: READY hostname=$EXPECT_HOSTNAME\$" "$S" ||
    { log "boot $boot: not READY as $EXPECT_HOSTNAME"; ok=0; }
  grep -q 'E2E: FAILED-UNITS none' "$S" || { log "boot $boot: failed units"; ok=0; }
  if [ "$boot" = 1 ]; then
    grep -q "realos-config: .* sha256=$SUM" "$S" || { log "boot 1: the initramfs did not read config sha256=$SUM"; ok=0; }
    grep -q 'E2E: IGNITION result={' "$S" || { log "boot 1: no Ignition result"; ok=0; }
  else
    grep -q 'realos-config:' "$S" && { log "boot $boot: Ignition's config was read again (first-boot flag not removed)"; ok=0; }
  fi
  [ "$rc" = 0 ] || { log "boot $boot: qemu exit $rc (124: hit the ${TIMEOUT}s limit)"; ok=0; }
  if [ "$ok" = 1 ]; then
    ready=$(grep -m1 'E2E: READY hostname=' "$S" | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
    echo "realos boot-disk $FW boot $boot: PASS (READY at ${ready}s, qemu exited at ${secs}s)"
  else
    tail -n 60 "$S" | sed 's/^/  serial| /' >&2
    echo "realos boot-disk $FW boot $boot: FAIL after ${secs}s"
    fail=1; break
  fi
done
exit $fail
