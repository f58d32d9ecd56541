#!/usr/bin/env bash
# Builds slipway's test OS: a tiny busybox "Flatcar" with Flatcar's mirror layout, so
# slipway's real Flatcar install path (iPXE -> PXE kernel + initramfs -> Ignition ->
# install.sh -> flatcar-install -> reboot -> installed disk, BIOS and UEFI) runs in
# QEMU in seconds. Everything comes from Debian packages (apt-get download + dpkg -x for
# the kernel, the host's busybox-static, syslinux, grub-efi-amd64-bin); nothing is
# mounted, no loop device is used. See README.md beside this file.
#
#   tests/e2e/testos/build.sh MIRROR_DIR VERSION      e.g. /tmp/mirror 4081.2.0
#
# writes MIRROR_DIR/VERSION/:
#   flatcar_production_pxe.vmlinuz              Debian's cloud kernel
#   flatcar_production_pxe_image.cpio.gz        the LIVE system (live-init, flatcar-install)
#   flatcar_production_image.bin.bz2            the INSTALLED disk: GPT + protective MBR
#                                               (syslinux gptmbr.bin), ESP with syslinux
#                                               (BIOS) and grub BOOTX64.EFI (UEFI), and the
#                                               raw config area (lib.sh)
#   flatcar_production_image.bin.bz2.sha256     sha256sum format, checked by flatcar-install
#   version.txt                                 Flatcar's, plus the build's input hash
# Runs again only when an input changed (FORCE=1 rebuilds). Installs missing build
# tools with apt-get when run as root.
#   KVER=6.1.0-56-cloud-amd64     pin the kernel ABI (default: linux-image-cloud-amd64's)
#   TESTOS_CACHE=/var/tmp/slipway-testos   where the unpacked kernel package is kept
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf '[testos/build %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# = 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
MIRROR_DIR=$1 VERSION=$2
[[ $VERSION =~ ^[A-Za-z0-9._-]+$ ]] || die "bad VERSION '$VERSION'"
OUT=$MIRROR_DIR/$VERSION
CACHE=${TESTOS_CACHE:-/var/tmp/slipway-testos}
KFLAVOR=cloud-amd64
T0=$(date +%s.%N)

# ---------------------------------------------------------------- tools
NEEDED=(
  busybox:busybox-static
  dpkg-deb:dpkg
  mcopy:mtools
  mkfs.fat:dosfstools
  syslinux:syslinux
  /usr/lib/syslinux/mbr/gptmbr.bin:syslinux-common
  /usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common
  grub-mkstandalone:grub-common
  /usr/lib/grub/x86_64-efi/linux.mod:grub-efi-amd64-bin
  sfdisk:fdisk
  bzip2:bzip2
)
missing=()
for spec in "${NEEDED[@]}"; do
  need=${spec%%:*}
  if [[ $need == /* ]]; then [ -e "$need" ]; else command -v "$need" >/dev/null 2>&1; fi ||
    missing+=("${spec#*:}")
done
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)   # a static busybox
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (run as root, or apt-get install them)"
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q dynamic && die "$BUSYBOX is not static (busybox-static)"

# ---------------------------------------------------------------- kernel
KVER=${KVER:-$(apt-cache depends "linux-image-$KFLAVOR" 2>/dev/null |
  awk '/Depends: linux-image-/{sub("linux-image-","",$2); print $2; exit}')}
[ -n "$KVER" ] || die "cannot resolve linux-image-$KFLAVOR (run apt-get update)"
KROOT=$CACHE/linux-image-$KVER
if [ ! -f "$KROOT/boot/vmlinuz-$KVER" ]; then
  log "downloading linux-image-$KVER"
  mkdir -p "$CACHE/dl"
  rm -f "$CACHE"/dl/linux-image-"$KVER"_*.deb
  (cd "$CACHE/dl" && apt-get download "linux-image-$KVER" >/dev/null 2>&1) ||
    die "apt-get download linux-image-$KVER failed (apt-get update? or pin KVER=)"
  rm -rf "$KROOT.tmp"; mkdir -p "$KROOT.tmp"
  dpkg -x "$CACHE"/dl/linux-image-"$KVER"_*.deb "$KROOT.tmp"
  rm -rf "$KROOT"; mv "$KROOT.tmp" "$KROOT"
  rm -f "$CACHE"/dl/linux-image-"$KVER"_*.deb
fi
KERNEL=$KROOT/boot/vmlinuz-$KVER
KMOD=$KROOT/lib/modules/$KVER/kernel

# ---------------------------------------------------------------- up to date?
INPUTS=$( { echo "$VERSION $KVER"; dpkg-query -W busybox-static syslinux syslinux-common grub-efi-amd64-bin 2>/dev/null
            cat "$HERE"/build.sh "$HERE"/lib.sh "$HERE"/live-init "$HERE"/installed-init \
                "$HERE"/flatcar-install "$HERE"/systemctl "$HERE"/udhcpc.script; } | sha256sum | cut -d' ' -f1)
FILES=(flatcar_production_pxe.vmlinuz flatcar_production_pxe_image.cpio.gz
       flatcar_production_image.bin.bz2 flatcar_production_image.bin.bz2.sha256 version.txt)
if [ "${FORCE:-0}" != 1 ] && grep -qx "SLIPWAY_TESTOS_INPUTS=$INPUTS" "$OUT/version.txt" 2>/dev/null; then
  ok=1; for f in "${FILES[@]}"; do [ -s "$OUT/$f" ] || ok=0; done
  if [ "$ok" = 1 ]; then log "$OUT is up to date (FORCE=1 rebuilds)"; exit 0; fi
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/slipway-testos.XXXXXX")
cleanup() { rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- kernel modules
# virtio disk + NIC drivers and what they need (the .ko's depends=), in load order.
declare -A SEEN=()
MODS=()
add_mod() {
  local name=$1 path deps d
  [ -z "${SEEN[$name]:-}" ] || return 0
  SEEN[$name]=1
  path=$(find "$KMOD" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
  [ -n "$path" ] || die "module $name not found in $KVER"
  deps=$(grep -a -o -m1 'depends=[^[:cntrl:]]*' "$path" | head -n 1 | cut -d= -f2)
  for d in ${deps//,/ }; do add_mod "$d"; done
  MODS+=("$path")
}
for m in virtio_pci virtio_blk virtio_net; do add_mod "$m"; done

# ---------------------------------------------------------------- initramfs
# make_initramfs NAME INIT OUT: busybox, lib.sh, the modules, INIT as /init.
make_initramfs() {
  local name=$1 init=$2 out=$3 r=$W/root-$1 p
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/share/testos,lib/testos,lib/modules/testos,etc,proc,sys,dev,run,tmp}
  cp "$BUSYBOX" "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  install -m 644 "$HERE/lib.sh" "$r/lib/testos/lib.sh"
  install -m 755 "$HERE/udhcpc.script" "$r/usr/share/testos/udhcpc.script"
  install -m 755 "$init" "$r/init"
  : > "$r/lib/modules/testos/order"
  for p in "${MODS[@]}"; do
    cp "$p" "$r/lib/modules/testos/"
    basename "$p" .ko >> "$r/lib/modules/testos/order"
  done
  cat > "$r/etc/os-release" <<EOF
NAME="slipway test OS ($name)"
ID=slipway-testos
VERSION=$VERSION
PRETTY_NAME="slipway test OS $VERSION ($name, not Flatcar)"
EOF
  echo "slipway-testos-$name" > "$r/etc/hostname"
  if [ "$name" = live ]; then
    install -m 755 "$HERE/flatcar-install" "$r/usr/bin/flatcar-install"
    install -m 755 "$HERE/systemctl" "$r/usr/bin/systemctl"
  fi
  (cd "$r" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -9n) > "$out"
}
log "initramfs: live + installed (busybox $("$BUSYBOX" | head -n 1 | awk '{print $2}'), modules: $(for p in "${MODS[@]}"; do basename "$p" .ko; done | tr '\n' ' '))"
make_initramfs live "$HERE/live-init" "$W/live.cpio.gz"
make_initramfs installed "$HERE/installed-init" "$W/installed.cpio.gz"

# ---------------------------------------------------------------- UEFI: grub standalone
KARGS="console=ttyS0 panic=-1 quiet slipway.testos=installed"
cat > "$W/grub.cfg" <<EOF
# slipway test OS, UEFI: embedded in \\EFI\\BOOT\\BOOTX64.EFI (grub-mkstandalone)
set timeout=0
search --no-floppy --file --set=root /flatcar/slipway-testos
echo "slipway test OS: grub (UEFI) booting from \$root"
linux /flatcar/vmlinuz-a $KARGS slipway.testos.firmware=uefi
initrd /flatcar/initrd-a.gz
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$W/BOOTX64.EFI" --locales= --fonts= --themes= \
  --install-modules="normal linux search search_fs_file part_gpt part_msdos fat echo test gzio efi_gop" \
  --modules="part_gpt part_msdos fat search_fs_file" \
  "boot/grub/grub.cfg=$W/grub.cfg"

# ---------------------------------------------------------------- BIOS: syslinux
cat > "$W/syslinux.cfg" <<EOF
# slipway test OS, BIOS: gptmbr.bin -> this partition's syslinux
SERIAL 0 115200
SAY slipway test OS: syslinux (BIOS) booting
DEFAULT installed
PROMPT 0
TIMEOUT 0
LABEL installed
  LINUX /flatcar/vmlinuz-a
  INITRD /flatcar/initrd-a.gz
  APPEND $KARGS slipway.testos.firmware=bios
EOF

# ---------------------------------------------------------------- the ESP (FAT16, in a file)
# Layout (512-byte sectors): GPT | config area at LBA 2048 (lib.sh, partition 2) |
# ESP from LBA 10240 (5 MiB, partition 1) | 1 MiB for the backup GPT.
# shellcheck source=lib.sh
. "$HERE/lib.sh"
CFG_LBA=$TESTOS_CONFIG_LBA CFG_SECTORS=$TESTOS_CONFIG_SECTORS
ESP_LBA=$(( CFG_LBA + CFG_SECTORS ))
payload=$(( $(stat -c %s "$KERNEL") + $(stat -c %s "$W/installed.cpio.gz") + $(stat -c %s "$W/BOOTX64.EFI") ))
ESP_MIB=$(( (payload + 3 * 1024 * 1024) / (1024 * 1024) ))   # + ~2 MiB for syslinux, FAT, slack
ESP_SECTORS=$(( ESP_MIB * 2048 ))
rm -f "$W/esp.img"
mkfs.fat -C -F 16 -n EFI-SYSTEM -i 5117a7e5 -h "$ESP_LBA" "$W/esp.img" $(( ESP_MIB * 1024 )) >/dev/null
export MTOOLS_SKIP_CHECK=1
MT=(-i "$W/esp.img")
mmd "${MT[@]}" ::/flatcar ::/syslinux ::/EFI ::/EFI/BOOT
echo "slipway test OS $VERSION, kernel $KVER" > "$W/slipway-testos"
mcopy "${MT[@]}" "$KERNEL" ::/flatcar/vmlinuz-a
mcopy "${MT[@]}" "$W/installed.cpio.gz" ::/flatcar/initrd-a.gz
mcopy "${MT[@]}" "$W/slipway-testos" ::/flatcar/slipway-testos
mcopy "${MT[@]}" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy "${MT[@]}" "$W/syslinux.cfg" ::/syslinux/syslinux.cfg
syslinux --install --directory /syslinux "$W/esp.img"
# syslinux 6 needs ldlinux.c32 beside ldlinux.sys (the installer may not copy it)
listing=$(mdir "${MT[@]}" -a -b ::/syslinux)
grep -qi 'ldlinux\.c32' <<<"$listing" ||
  mcopy "${MT[@]}" /usr/lib/syslinux/modules/bios/ldlinux.c32 ::/syslinux/ldlinux.c32

# ---------------------------------------------------------------- the disk
DISK=$W/flatcar_production_image.bin
TOTAL=$(( ESP_LBA + ESP_SECTORS + 2048 ))
truncate -s $(( TOTAL * 512 )) "$DISK"
sfdisk --quiet --no-reread --no-tell-kernel "$DISK" <<EOF
label: gpt
label-id: 5117A7E5-0000-4000-8000-000000000000
unit: sectors
start=$ESP_LBA, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5117A7E5-0000-4000-8000-000000000001, name="EFI-SYSTEM", attrs="LegacyBIOSBootable"
start=$CFG_LBA, size=$CFG_SECTORS, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5117A7E5-0000-4000-8000-000000000002, name="SLIPWAY-CONFIG"
EOF
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$W/esp.img" of="$DISK" bs=512 seek="$ESP_LBA" conv=notrunc status=none
testos_write_config_area "$DISK" none
testos_read_config_area "$DISK" "$W/cfg.check" || die "the empty config area does not read back"

# ---------------------------------------------------------------- the mirror
log "compressing the $(( TOTAL / 2048 )) MiB disk image (bzip2 -9)"
bzip2 -9 -c "$DISK" > "$W/flatcar_production_image.bin.bz2"
(cd "$W" && sha256sum flatcar_production_image.bin.bz2 > flatcar_production_image.bin.bz2.sha256)
cp "$KERNEL" "$W/flatcar_production_pxe.vmlinuz"
cp "$W/live.cpio.gz" "$W/flatcar_production_pxe_image.cpio.gz"
cat > "$W/version.txt" <<EOF
FLATCAR_BUILD=${VERSION%%.*}
FLATCAR_VERSION=$VERSION
FLATCAR_VERSION_ID=$VERSION
FLATCAR_BUILD_ID="slipway-testos"
SLIPWAY_TESTOS_KERNEL=$KVER
SLIPWAY_TESTOS_INPUTS=$INPUTS
EOF
mkdir -p "$OUT"
rm -f "$OUT/version.txt"     # the stamp goes last: an interrupted copy is never "up to date"
for f in "${FILES[@]}"; do
  [ "$f" = version.txt ] && continue
  cp "$W/$f" "$OUT/.$f.$$.tmp" && mv -f "$OUT/.$f.$$.tmp" "$OUT/$f"
done
cp "$W/version.txt" "$OUT/.version.txt.$$.tmp" && mv -f "$OUT/.version.txt.$$.tmp" "$OUT/version.txt"

for f in "${FILES[@]}"; do printf '  %-42s %9s bytes\n' "$f" "$(stat -c %s "$OUT/$f")" >&2; done
log "built $OUT in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $T0}") s (kernel $KVER, disk $(( TOTAL / 2048 )) MiB, ESP $ESP_MIB MiB)"
