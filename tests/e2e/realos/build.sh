#!/usr/bin/env bash
# Builds slipway's REAL-INIT test OS: Debian 12 packages (systemd 252, the `ignition` 2.14
# engine in a dracut 059 initramfs, containerd + runc, curl) in Flatcar's mirror layout,
# so slipway's Flatcar path runs against a real Ignition engine and a real systemd:
#   iPXE -> PXE kernel + initramfs: Ignition (metal, ignition.config.url=) writes the
#   live config into a tmpfs-over-squashfs root -> systemd runs slipway-install.service
#   -> flatcar-install writes the disk image and stores the config on its ESP -> reboot
#   -> the disk (BIOS: syslinux, UEFI: grub) -> initramfs: Ignition (file platform) over
#   the stored config, first boot only -> systemd applies it -> slipway's units -> ready.
# See README.md beside this file. Root only (mmdebstrap, chroot for dracut, apt-get).
#
#   tests/e2e/realos/build.sh MIRROR_DIR VERSION      e.g. /tmp/mirror 4081.2.0
#
# writes MIRROR_DIR/VERSION/:
#   flatcar_production_pxe.vmlinuz              Debian's cloud kernel
#   flatcar_production_pxe_image.cpio.gz        the LIVE system: dracut initramfs (gzip)
#                                               + a cpio with /realos/rootfs.squashfs
#   flatcar_production_image.bin.bz2            the INSTALLED disk: GPT, ESP (syslinux,
#                                               grub BOOTX64.EFI, kernel, initramfs), ext4 root
#   flatcar_production_image.bin.bz2.sha256     sha256sum format, checked by flatcar-install
#   version.txt                                 Flatcar's keys + the build's input hash
# and MIRROR_DIR/extensions/kubernetes-$K8S_VERSION-x86-64.raw (a squashfs sysext with
# kubeadm/kubelet/kubectl stand-ins). Runs again only when an input changed (FORCE=1
# rebuilds). Environment:
#   K8S_VERSION=v1.31.2                    the sysext's version (slipway's kubernetes.version)
#   KVER=6.1.0-57-cloud-amd64              pin the kernel ABI (default: linux-image-cloud-amd64's)
#   REALOS_CACHE=/var/tmp/slipway-realos   the kernel package, the mmdebstrap tarball and
#                                          the last build's output (same inputs: a copy)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf '[realos/build %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
elapsed() { awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $1}"; }

[ $# = 2 ] || { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
MIRROR_DIR=$1 VERSION=$2
[[ $VERSION =~ ^[A-Za-z0-9._-]+$ ]] || die "bad VERSION '$VERSION'"
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, chroot, apt-get)"
OUT=$MIRROR_DIR/$VERSION
CACHE=${REALOS_CACHE:-/var/tmp/slipway-realos}
K8S_VERSION=${K8S_VERSION:-v1.31.2}
SYSEXT=kubernetes-$K8S_VERSION-x86-64.raw
SUITE=bookworm
KFLAVOR=cloud-amd64
T0=$(date +%s.%N)

# ---------------------------------------------------------------- host tools
NEEDED=(
  mmdebstrap:mmdebstrap mksquashfs:squashfs-tools mkfs.ext4:e2fsprogs cpio:cpio
  mcopy:mtools mkfs.fat:dosfstools syslinux:syslinux
  /usr/lib/syslinux/mbr/gptmbr.bin:syslinux-common
  /usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common
  grub-mkstandalone:grub-common /usr/lib/grub/x86_64-efi/linux.mod:grub-efi-amd64-bin
  sfdisk:fdisk bzip2:bzip2 lbzip2:lbzip2 unshare:util-linux depmod:kmod
)
missing=()
for spec in "${NEEDED[@]}"; do
  need=${spec%%:*}
  if [[ $need == /* ]]; then [ -e "$need" ]; else command -v "$need" >/dev/null 2>&1; fi ||
    missing+=("${spec#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- kernel (not in the rootfs)
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
KMODDIR=$KROOT/lib/modules/$KVER

# ---------------------------------------------------------------- the base rootfs (mmdebstrap)
# Everything both systems run. The kernel's modules are added per build (a few only).
PACKAGES=(systemd systemd-sysv udev dbus kmod iproute2 procps less
          curl ca-certificates bzip2 mtools e2fsprogs
          containerd runc python3-yaml
          dracut-core dracut-network ignition)
MMARGS=(--variant=minbase --mode=root --format=tar
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
        --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
        --dpkgopt='path-exclude=/usr/share/info/*')
MIRRORS=("deb http://deb.debian.org/debian $SUITE main"
         "deb http://deb.debian.org/debian $SUITE-updates main"
         "deb http://deb.debian.org/debian-security $SUITE-security main")
BASE_KEY=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" "${MMARGS[@]}" "${MIRRORS[@]}" | sha256sum | cut -c1-16)
BASE=$CACHE/base-$BASE_KEY.tar
if [ ! -s "$BASE" ]; then
  t=$(date +%s.%N)
  log "mmdebstrap $SUITE: ${PACKAGES[*]}"
  mkdir -p "$CACHE"
  mmdebstrap "${MMARGS[@]}" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$BASE.tmp" "${MIRRORS[@]}" >"$CACHE/mmdebstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/mmdebstrap.log" >&2; die "mmdebstrap failed ($CACHE/mmdebstrap.log)"; }
  mv "$BASE.tmp" "$BASE"
  find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$BASE_KEY.tar" -delete
  log "mmdebstrap done in $(elapsed "$t") s: $BASE ($(du -m "$BASE" | cut -f1) MiB)"
fi

# ---------------------------------------------------------------- up to date?
INPUTS=$( { echo "$VERSION $KVER $K8S_VERSION $BASE_KEY"
            find "$HERE" -type f ! -name README.md ! -name boot-disk.sh | LC_ALL=C sort |
              while read -r f; do echo "${f#"$HERE"/} $(stat -c %a "$f")"; cat "$f"; done; } |
          sha256sum | cut -d' ' -f1)
FILES=(flatcar_production_pxe.vmlinuz flatcar_production_pxe_image.cpio.gz
       flatcar_production_image.bin.bz2 flatcar_production_image.bin.bz2.sha256 version.txt)
# publish DIR: DIR's files into the mirror (the version.txt stamp last, so an interrupted
# copy is never "up to date")
publish() {
  local from=$1 f
  mkdir -p "$OUT" "$MIRROR_DIR/extensions"
  rm -f "$OUT/version.txt"
  cp "$from/$SYSEXT" "$MIRROR_DIR/extensions/.$SYSEXT.$$.tmp" && mv -f "$MIRROR_DIR/extensions/.$SYSEXT.$$.tmp" "$MIRROR_DIR/extensions/$SYSEXT"
  for f in "${FILES[@]}"; do
    [ "$f" = version.txt ] && continue
    cp "$from/$f" "$OUT/.$f.$$.tmp" && mv -f "$OUT/.$f.$$.tmp" "$OUT/$f"
  done
  cp "$from/version.txt" "$OUT/.version.txt.$$.tmp" && mv -f "$OUT/.version.txt.$$.tmp" "$OUT/version.txt"
}
if [ "${FORCE:-0}" != 1 ]; then
  if grep -qx "SLIPWAY_REALOS_INPUTS=$INPUTS" "$OUT/version.txt" 2>/dev/null; then
    ok=1; for f in "${FILES[@]}"; do [ -s "$OUT/$f" ] || ok=0; done
    [ -s "$MIRROR_DIR/extensions/$SYSEXT" ] || ok=0
    if [ "$ok" = 1 ]; then log "$OUT is up to date (FORCE=1 rebuilds)"; exit 0; fi
  fi
  # the last build's output, kept in the cache: a copy
  if grep -qx "SLIPWAY_REALOS_INPUTS=$INPUTS" "$CACHE/out/version.txt" 2>/dev/null; then
    publish "$CACHE/out"
    log "copied the cached build ($CACHE/out) to $OUT in $(elapsed "$T0") s (FORCE=1 rebuilds)"
    exit 0
  fi
fi

W=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-realos.XXXXXX")
cleanup() { rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
R=$W/root
mkdir -p "$R"
tar -C "$R" --numeric-owner -xf "$BASE"

# ---------------------------------------------------------------- kernel modules
# Only what the two systems load: virtio disk + NIC, the live root (loop, squashfs,
# overlay), sysext (loop, squashfs), and the .ko's depends=, then depmod.
MODS=(virtio_pci virtio_blk virtio_net loop squashfs overlay erofs vfat nls_cp437 nls_iso8859-1 nls_ascii autofs4 efivarfs)
declare -A SEEN=()
add_mod() {
  local name=$1 path deps d rel
  [ -z "${SEEN[$name]:-}" ] || return 0
  SEEN[$name]=1
  path=$(find "$KMODDIR/kernel" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
  if [ -z "$path" ]; then
    grep -q "/${name//_/[_-]}\.ko\$" "$KMODDIR/modules.builtin" && return 0
    die "module $name not found in $KVER"
  fi
  deps=$(grep -a -o -m1 'depends=[^[:cntrl:]]*' "$path" | head -n 1 | cut -d= -f2)
  for d in ${deps//,/ }; do add_mod "$d"; done
  rel=${path#"$KMODDIR"/}
  install -D -m 644 "$path" "$R/usr/lib/modules/$KVER/$rel"
}
for m in "${MODS[@]}"; do add_mod "$m"; done
cp "$KMODDIR"/modules.order "$KMODDIR"/modules.builtin "$KMODDIR"/modules.builtin.modinfo "$R/usr/lib/modules/$KVER/"
depmod -b "$R" "$KVER"
log "kernel $KVER, modules: ${!SEEN[*]}"

# ---------------------------------------------------------------- the OS's own files
cp -a "$HERE/rootfs/." "$R/"
cp -a "$HERE/dracut/50slipway-realos" "$R/usr/lib/dracut/modules.d/"
systemctl --root "$R" -q enable systemd-networkd.service systemd-networkd-wait-online.service \
  containerd.service slipway-e2e-report.service slipway-e2e-live.service
# no prompt for a locale on the first boot; no binfmt_misc module; no login prompt on
# the serial console (the E2E lines go there)
systemctl --root "$R" -q mask systemd-firstboot.service systemd-binfmt.service \
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount serial-getty@ttyS0.service
# "uninitialized": systemd's first boot, so it applies the presets Ignition writes
echo uninitialized > "$R/etc/machine-id"
echo realos > "$R/etc/hostname"; chmod 644 "$R/etc/hostname"
cat > "$R/etc/slipway-realos-release" <<EOF
SLIPWAY_REALOS_VERSION=$VERSION
SLIPWAY_REALOS_KERNEL=$KVER
EOF
echo 'mtools_skip_check=1' > "$R/etc/mtools.conf"

# ---------------------------------------------------------------- initramfs images (dracut in a chroot)
t=$(date +%s.%N)
unshare -m --propagation private -- bash -euo pipefail -c '
  R=$1 KVER=$2
  mount -t proc proc "$R/proc"; mount -t sysfs sys "$R/sys"; mount --rbind /dev "$R/dev"
  mount -t tmpfs tmpfs "$R/tmp"; mount -t tmpfs tmpfs "$R/var/tmp"
  for flavor in live installed; do
    chroot "$R" env REALOS_FLAVOR=$flavor dracut --quiet --force --no-hostonly --no-hostonly-cmdline \
      --kver "$KVER" --gzip --add "slipway-realos" \
      --omit "i18n resume plymouth btrfs crypt lvm mdraid dm multipath nfs iscsi nbd fcoe fcoe-uefi cifs dmraid rngd" \
      --add-drivers "virtio_pci virtio_blk virtio_net loop squashfs overlay" \
      /initrd-$flavor.img
  done
' _ "$R" "$KVER" >"$W/dracut.log" 2>&1 || { tail -n 30 "$W/dracut.log" >&2; die "dracut failed"; }
mv "$R/initrd-live.img" "$R/initrd-installed.img" "$W/"
log "dracut: live $(du -m "$W/initrd-live.img" | cut -f1) MiB, installed $(du -m "$W/initrd-installed.img" | cut -f1) MiB in $(elapsed "$t") s"
# Slimmer root file systems (the bz2 image is unpacked under TCG at install): the engine
# runs from the initramfs; perl (usrmerge's dependency), udev's hwdb, containerd's
# legacy shims and ctr are never used by these systems.
rm -f "$R/usr/lib/dracut/modules.d/30ignition/ignition"
rm -rf "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/* "$R"/var/log/*.log "$R"/tmp/* "$R"/var/tmp/* \
  "$R"/usr/share/perl "$R"/usr/lib/x86_64-linux-gnu/perl "$R"/usr/lib/x86_64-linux-gnu/libperl.so* \
  "$R"/usr/lib/udev/hwdb.bin "$R"/usr/lib/udev/hwdb.d \
  "$R"/usr/bin/containerd-shim "$R"/usr/bin/containerd-shim-runc-v1 "$R"/usr/bin/ctr "$R"/usr/bin/containerd-stress
find "$R/usr/lib/python3" "$R/usr/lib/python3.11" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

# ---------------------------------------------------------------- live: initramfs + squashfs root
t=$(date +%s.%N)
mkdir -p "$W/sq/realos"
# (the live system installs; it runs no containers)
mksquashfs "$R" "$W/sq/realos/rootfs.squashfs" -comp zstd -Xcompression-level 9 -noappend -no-xattrs -quiet -no-progress \
  -e usr/bin/containerd usr/sbin/runc usr/bin/containerd-shim-runc-v2
(cd "$W/sq" && find realos | LC_ALL=C sort | cpio -o -H newc --quiet) > "$W/live-root.cpio"
# the kernel reads a cpio after a compressed one only at a 4-byte aligned offset (zeros
# between them are skipped): pad the gzip'd dracut image to 512 bytes
cp "$W/initrd-live.img" "$W/flatcar_production_pxe_image.cpio.gz"
truncate -s $(( ($(stat -c %s "$W/initrd-live.img") + 511) / 512 * 512 )) "$W/flatcar_production_pxe_image.cpio.gz"
cat "$W/live-root.cpio" >> "$W/flatcar_production_pxe_image.cpio.gz"
chmod 644 "$W/flatcar_production_pxe_image.cpio.gz"
log "live: squashfs $(du -m "$W/sq/realos/rootfs.squashfs" | cut -f1) MiB in $(elapsed "$t") s"

# ---------------------------------------------------------------- sysext
SX=$W/sysext
mkdir -p "$SX/usr/bin" "$SX/usr/lib/extension-release.d" "$SX/usr/lib/systemd/system"
for b in kubeadm kubelet kubectl; do install -m 755 "$HERE/sysext/k8s-standin" "$SX/usr/bin/$b"; done
install -m 644 "$HERE/sysext/kubelet.service" "$SX/usr/lib/systemd/system/kubelet.service"
printf 'ID=_any\nSYSEXT_SCOPE=system\nSLIPWAY_REALOS_KUBERNETES=%s\n' "$K8S_VERSION" \
  > "$SX/usr/lib/extension-release.d/extension-release.kubernetes"
mksquashfs "$SX" "$W/$SYSEXT" -all-root -comp zstd -noappend -no-xattrs -quiet -no-progress

# ---------------------------------------------------------------- installed: ESP + ext4 root
# GPT: 1 EFI-SYSTEM (FAT16, LegacyBIOSBootable: syslinux + grub + kernel + initramfs +
# the first-boot flags; flatcar-install adds /flatcar/config.ign), 2 ROOT (ext4).
ROOT_UUID=5117a7e5-0000-4000-8000-000000000002
KARGS="root=PARTUUID=$ROOT_UUID rw console=ttyS0 quiet systemd.show_status=1 rd.shell=0 rd.emergency=poweroff"
cat > "$W/grub.cfg" <<EOF
# slipway real-init test OS, UEFI: embedded in \\EFI\\BOOT\\BOOTX64.EFI (grub-mkstandalone)
set timeout=0
search --no-floppy --file --set=root /flatcar/slipway-realos
set first_boot=""
if [ -f (\$root)/flatcar/first_boot ]; then set first_boot="flatcar.first_boot=detected"; fi
echo "slipway real-init test OS: grub (UEFI) \$first_boot"
linux /flatcar/vmlinuz-a $KARGS slipway.realos.firmware=uefi \$first_boot
initrd /flatcar/initrd-a.gz
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$W/BOOTX64.EFI" --locales= --fonts= --themes= \
  --install-modules="normal linux search search_fs_file part_gpt part_msdos fat echo test gzio efi_gop" \
  --modules="part_gpt part_msdos fat search_fs_file" "boot/grub/grub.cfg=$W/grub.cfg"
# syslinux cannot test for a file: the image's syslinux.cfg boots with the first-boot
# argument, and the initramfs replaces it by syslinux-subsequent.cfg after Ignition ran
# (realos-firstboot-done), as it removes grub's /flatcar/first_boot.
for fb in firstboot subsequent; do
  arg=""; [ "$fb" = firstboot ] && arg=" flatcar.first_boot=detected"
  cat > "$W/syslinux-$fb.cfg" <<EOF
# slipway real-init test OS, BIOS: gptmbr.bin -> this partition's syslinux
SERIAL 0 115200
SAY slipway real-init test OS: syslinux (BIOS) $fb
DEFAULT installed
PROMPT 0
TIMEOUT 0
LABEL installed
  LINUX /flatcar/vmlinuz-a
  INITRD /flatcar/initrd-a.gz
  APPEND $KARGS slipway.realos.firmware=bios$arg
EOF
done
echo "slipway real-init test OS $VERSION, kernel $KVER" > "$W/slipway-realos"
echo "first boot: Ignition runs; removed by the initramfs afterwards" > "$W/first_boot"

ESP_LBA=2048
payload=$(( $(stat -c %s "$KERNEL") + $(stat -c %s "$W/initrd-installed.img") + $(stat -c %s "$W/BOOTX64.EFI") ))
ESP_MIB=$(( (payload + 8 * 1024 * 1024) / (1024 * 1024) ))
ESP_SECTORS=$(( ESP_MIB * 2048 ))
mkfs.fat -C -F 16 -n EFI-SYSTEM -i 5117a7e5 -h "$ESP_LBA" "$W/esp.img" $(( ESP_MIB * 1024 )) >/dev/null
export MTOOLS_SKIP_CHECK=1
MT=(-i "$W/esp.img")
mmd "${MT[@]}" ::/flatcar ::/syslinux ::/EFI ::/EFI/BOOT
mcopy "${MT[@]}" "$KERNEL" ::/flatcar/vmlinuz-a
mcopy "${MT[@]}" "$W/initrd-installed.img" ::/flatcar/initrd-a.gz
mcopy "${MT[@]}" "$W/slipway-realos" ::/flatcar/slipway-realos
mcopy "${MT[@]}" "$W/first_boot" ::/flatcar/first_boot
mcopy "${MT[@]}" "$W/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy "${MT[@]}" "$W/syslinux-firstboot.cfg" ::/syslinux/syslinux.cfg
mcopy "${MT[@]}" "$W/syslinux-subsequent.cfg" ::/syslinux/syslinux-subsequent.cfg
syslinux --install --directory /syslinux "$W/esp.img"
mdir "${MT[@]}" -a -b ::/syslinux | grep -qi 'ldlinux\.c32' ||
  mcopy "${MT[@]}" /usr/lib/syslinux/modules/bios/ldlinux.c32 ::/syslinux/ldlinux.c32

t=$(date +%s.%N)
used_mib=$(du -s -m "$R" | cut -f1)
ROOT_MIB=$(( used_mib + used_mib / 5 + 192 ))
ROOT_LBA=$(( ESP_LBA + ESP_SECTORS ))
ROOT_SECTORS=$(( ROOT_MIB * 2048 ))
mkfs.ext4 -q -F -L ROOT -U 5117a7e5-0000-4000-8000-0000000000ef -E root_owner=0:0 -d "$R" "$W/root.img" "${ROOT_MIB}M"
log "installed root: ext4 $ROOT_MIB MiB ($used_mib MiB used) in $(elapsed "$t") s"

DISK=$W/flatcar_production_image.bin
TOTAL=$(( ROOT_LBA + ROOT_SECTORS + 2048 ))
truncate -s $(( TOTAL * 512 )) "$DISK"
sfdisk --quiet --no-reread --no-tell-kernel "$DISK" <<EOF
label: gpt
label-id: 5117A7E5-0000-4000-8000-000000000000
unit: sectors
start=$ESP_LBA, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5117A7E5-0000-4000-8000-000000000001, name="EFI-SYSTEM", attrs="LegacyBIOSBootable"
start=$ROOT_LBA, size=$ROOT_SECTORS, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_UUID, name="ROOT"
EOF
dd if=/usr/lib/syslinux/mbr/gptmbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$W/esp.img" of="$DISK" bs=512 seek="$ESP_LBA" conv=notrunc status=none
dd if="$W/root.img" of="$DISK" bs=1M seek=$(( ROOT_LBA / 2048 )) conv=notrunc,sparse status=none

# ---------------------------------------------------------------- the mirror
t=$(date +%s.%N)
lbzip2 -9 -n 2 -c "$DISK" > "$W/flatcar_production_image.bin.bz2"
(cd "$W" && sha256sum flatcar_production_image.bin.bz2 > flatcar_production_image.bin.bz2.sha256)
log "disk $(( TOTAL / 2048 )) MiB -> bz2 $(du -m "$W/flatcar_production_image.bin.bz2" | cut -f1) MiB in $(elapsed "$t") s"
cp "$KERNEL" "$W/flatcar_production_pxe.vmlinuz"
cat > "$W/version.txt" <<EOF
FLATCAR_BUILD=${VERSION%%.*}
FLATCAR_VERSION=$VERSION
FLATCAR_VERSION_ID=$VERSION
FLATCAR_BUILD_ID="slipway-realos"
SLIPWAY_REALOS_KERNEL=$KVER
SLIPWAY_REALOS_KUBERNETES_SYSEXT=$SYSEXT
SLIPWAY_REALOS_INPUTS=$INPUTS
EOF
publish "$W"
# keep it for the next run (the stamp last here too)
rm -rf "$CACHE/out.tmp" "$CACHE/out"; mkdir -p "$CACHE/out.tmp"
for f in "${FILES[@]}" "$SYSEXT"; do [ "$f" = version.txt ] || cp "$W/$f" "$CACHE/out.tmp/"; done
cp "$W/version.txt" "$CACHE/out.tmp/" && mv "$CACHE/out.tmp" "$CACHE/out"

for f in "${FILES[@]}"; do printf '  %-42s %10s bytes\n' "$f" "$(stat -c %s "$OUT/$f")" >&2; done
printf '  %-42s %10s bytes\n' "../extensions/$SYSEXT" "$(stat -c %s "$MIRROR_DIR/extensions/$SYSEXT")" >&2
log "built $OUT in $(elapsed "$T0") s (kernel $KVER, disk $(( TOTAL / 2048 )) MiB: ESP $ESP_MIB MiB, root $ROOT_MIB MiB)"
