#!/usr/bin/env bash
# Boots the test OS's INSTALLED disk image directly in QEMU (TCG, no network boot, no
# slipway), with a stub Ignition config written into its config area exactly where
# flatcar-install writes it (lib.sh), to prove the disk boots on each firmware:
#   bios: SeaBIOS -> gptmbr.bin -> syslinux on the ESP -> kernel + initramfs
#   uefi: OVMF -> \EFI\BOOT\BOOTX64.EFI (grub standalone) -> kernel + initramfs
# and that the installed system reads the config back: it must print
#   E2E: CONFIG sha256=<the stub's sha256>    and    E2E: READY hostname=<the stub's>
# within the time limit. The NIC is QEMU user networking with restrict=on (DHCP from
# QEMU itself, nothing leaves the VM); the stub's ready URL is the guest's own
# 127.0.0.1:9, so the report fails at once ("READY-REPORT http=failed"), as expected.
#
#   tests/e2e/testos/boot-disk.sh IMAGE bios|uefi
#       IMAGE: flatcar_production_image.bin.bz2 (or the .bin); it is never modified
#   CONFIG=FILE ...            store FILE (Ignition JSON) instead of the stub, e.g.
#                              slipway's `render --artifact installed` output
#   EXPECT_HOSTNAME=NAME ...   the hostname READY must print (default: the stub's
#                              "testos-stub"; with CONFIG=, not checked unless given)
#   TIMEOUT=120 KEEP=1         time limit (s); keep the work directory (serial log)
# Exit 0 if READY (and the CONFIG sha256) came in time, 1 otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf '[boot-disk %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# = 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
IMAGE=$1 FW=$2
TIMEOUT=${TIMEOUT:-120}
case "$FW" in bios|uefi) ;; *) die "FW must be bios or uefi, not '$FW'" ;; esac
[ -f "$IMAGE" ] || die "no image $IMAGE (build it with tests/e2e/testos/build.sh MIRROR VERSION)"
command -v qemu-system-x86_64 >/dev/null || die "missing qemu-system-x86_64 (qemu-system-x86)"
if [ "$FW" = uefi ]; then
  for f in /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd; do
    [ -f "$f" ] || die "missing $f (ovmf)"
  done
fi
# shellcheck source=lib.sh
. "$HERE/lib.sh"

W=$(mktemp -d "${TMPDIR:-/tmp}/slipway-boot-disk.XXXXXX")
QPID=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  set +e
  if [ -f "$W/qemu.pid" ]; then
    QPID=$(cat "$W/qemu.pid")
    [ "$(ps -o comm= -p "$QPID" 2>/dev/null)" = qemu-system-x86 ] && kill "$QPID"
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then
    log "work directory kept: $W (serial log: $W/serial.log)"
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the disk, with a config
DISK=$W/disk.img
case "$IMAGE" in
  *.bz2) bzip2 -dc "$IMAGE" > "$DISK" ;;
  *) cp "$IMAGE" "$DISK" ;;
esac
if [ -n "${CONFIG:-}" ]; then
  cp "$CONFIG" "$W/config.ign"
  EXPECT_HOSTNAME=${EXPECT_HOSTNAME:-}
else
  # the shape of slipway's installed Ignition: /etc/hostname as a data URL, and a unit
  # that POSTs the ready URL
  host_b64=$(printf 'testos-stub\n' | base64 -w0)
  cat > "$W/config.ign" <<EOF
{
  "ignition": {"version": "3.3.0"},
  "storage": {"files": [
    {"contents": {"source": "data:;base64,$host_b64"}, "mode": 420, "overwrite": true, "path": "/etc/hostname"}
  ]},
  "systemd": {"units": [
    {"contents": "[Unit]\\nDescription=slipway: report ready (boot-disk.sh stub)\\n\\n[Service]\\nType=oneshot\\nExecStart=/usr/bin/curl -fsS -X POST http://127.0.0.1:9/api/v1/nodes/stub/ready\\n\\n[Install]\\nWantedBy=multi-user.target\\n", "enabled": true, "name": "slipway-ready.service"}
  ]}
}
EOF
  EXPECT_HOSTNAME=${EXPECT_HOSTNAME:-testos-stub}
fi
testos_read_config_area "$DISK" "$W/empty" || die "$IMAGE has no test OS config area (not built by build.sh?)"
testos_write_config_area "$DISK" ignition "$W/config.ign" || die "cannot write the config area"
SUM=$(sha256sum < "$W/config.ign" | cut -d' ' -f1)

# ---------------------------------------------------------------- boot
fwargs=() mem=256
if [ "$FW" = uefi ]; then
  mem=512
  cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/vars.fd"
  # shellcheck disable=SC2054  # commas inside QEMU's option values
  fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
          -drive if=pflash,format=raw,file="$W/vars.fd")
fi
log "booting $IMAGE ($FW, TCG, limit ${TIMEOUT}s), stub config sha256=$SUM"
T0=$EPOCHREALTIME
rc=0
# virtio disk (bootindex: OVMF must not try the NIC first), virtio NIC without a boot ROM
timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg -m "$mem" -nodefaults -nographic -no-reboot -monitor none "${fwargs[@]}" \
    -drive file="$DISK",if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0,bootindex=1 \
    -netdev user,id=n0,restrict=on,hostname=dhcp-name -device virtio-net-pci,netdev=n0,romfile= \
    -serial stdio -pidfile "$W/qemu.pid" </dev/null 2>"$W/qemu.err" |
  sed -u 's/\r//g; s/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\x1bc//g' |
  while IFS= read -r line; do
    t=$(awk "BEGIN{printf \"%7.2f\", $EPOCHREALTIME - $T0}")
    printf '[%s] %s\n' "$t" "$line" >> "$W/serial.log"
    case "$line" in *E2E:*|*"slipway test OS"*) printf '  [%s] %s\n' "$t" "$line" >&2 ;; esac
  done || rc=$?
secs=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T0}")

ok=1
grep -q "E2E: CONFIG sha256=$SUM\$" "$W/serial.log" || { log "no 'E2E: CONFIG sha256=$SUM'"; ok=0; }
if [ -n "$EXPECT_HOSTNAME" ]; then
  grep -q "E2E: READY hostname=$EXPECT_HOSTNAME\$" "$W/serial.log" || { log "no 'E2E: READY hostname=$EXPECT_HOSTNAME'"; ok=0; }
else
  grep -q 'E2E: READY hostname=' "$W/serial.log" || { log "no 'E2E: READY hostname='"; ok=0; }
fi
[ "$rc" = 0 ] || { log "qemu exit $rc (124: hit the ${TIMEOUT}s limit)"; ok=0; }
if [ "$ok" = 1 ]; then
  ready=$(grep -m1 'E2E: READY hostname=' "$W/serial.log" | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
  echo "boot-disk $FW: PASS (READY at ${ready}s, qemu exited at ${secs}s)"
  exit 0
fi
tail -n 40 "$W/serial.log" | sed 's/^/  serial| /' >&2
echo "boot-disk $FW: FAIL after ${secs}s"
exit 1
