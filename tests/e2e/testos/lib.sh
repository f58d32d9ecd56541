# shellcheck shell=sh
# shellcheck disable=SC2034  # TESTOS_* are read by the scripts that source this
# Shared functions of slipway's test OS (see README.md beside this file).
#
# Sourced by the live system's /init, the installed system's /init and the
# flatcar-install stand-in (busybox ash, from /lib/testos/lib.sh), and by boot-disk.sh
# on the host (bash + coreutils) for the config area functions only. Plain POSIX sh and
# busybox applets: no bashisms, no GNU-only options.

# ---------------------------------------------------------------- the config area
# flatcar-install stores the Ignition (or cloud-config) file it is given in a raw area
# of the installed disk at a fixed place, which is also GPT partition 2 "SLIPWAY-CONFIG"
# of the image build.sh makes (busybox has no mtools and no vfat writer):
#   LBA 2048 (byte 1 MiB)  one 512-byte text header, NUL-padded:
#                            SLIPWAY-TESTOS-CONFIG 1
#                            kind=ignition|cloud-config|none
#                            size=<bytes>
#                            sha256=<hex of the config bytes, or ->
#   LBA 2049 ...           the config bytes, zero-padded to a sector
# The area is 4 MiB (8192 sectors) in all, header included. build.sh writes a
# "kind=none" header into the image, so flatcar-install can check that the image it
# wrote is this test OS before it stores anything.
TESTOS_CONFIG_LBA=2048
TESTOS_CONFIG_SECTORS=8192
TESTOS_CONFIG_MAGIC='SLIPWAY-TESTOS-CONFIG 1'

# testos_write_config_area DEV KIND [FILE]: KIND is ignition, cloud-config or none.
testos_write_config_area() {
  _dev=$1 _kind=$2 _file=${3:-}
  _size=0 _sum=-
  if [ "$_kind" != none ]; then
    [ -f "$_file" ] || { echo "config area: no file '$_file'" >&2; return 1; }
    _size=$(wc -c < "$_file" | tr -d ' ')
    _max=$(( (TESTOS_CONFIG_SECTORS - 1) * 512 ))
    if [ "$_size" -gt "$_max" ]; then
      echo "config area: $_file is $_size bytes, the area holds $_max" >&2; return 1
    fi
    _sum=$(sha256sum < "$_file" | cut -d' ' -f1)
    if [ "$_size" -gt 0 ]; then
      dd if="$_file" of="$_dev" bs=512 seek=$((TESTOS_CONFIG_LBA + 1)) conv=notrunc,sync 2>/dev/null ||
        { echo "config area: cannot write $_dev" >&2; return 1; }
    fi
  fi
  # the header last: a half-written config never has a valid header
  printf '%s\nkind=%s\nsize=%s\nsha256=%s\n' "$TESTOS_CONFIG_MAGIC" "$_kind" "$_size" "$_sum" |
    dd of="$_dev" bs=512 seek=$TESTOS_CONFIG_LBA count=1 conv=notrunc,sync 2>/dev/null ||
    { echo "config area: cannot write the header to $_dev" >&2; return 1; }
}

# testos_read_config_area DEV OUT: sets TESTOS_KIND TESTOS_SIZE TESTOS_SHA256 and writes
# the config to OUT. Returns 1 if DEV has no config area (no magic), 2 if the stored
# bytes do not match the header's sha256.
testos_read_config_area() {
  _dev=$1 _out=$2
  TESTOS_KIND="" TESTOS_SIZE="" TESTOS_SHA256=""
  _hdr=$(dd if="$_dev" bs=512 skip=$TESTOS_CONFIG_LBA count=1 2>/dev/null | tr -d '\000')
  [ "$(printf '%s\n' "$_hdr" | head -n 1)" = "$TESTOS_CONFIG_MAGIC" ] || return 1
  TESTOS_KIND=$(printf '%s\n' "$_hdr" | sed -n 's/^kind=//p')
  TESTOS_SIZE=$(printf '%s\n' "$_hdr" | sed -n 's/^size=//p')
  TESTOS_SHA256=$(printf '%s\n' "$_hdr" | sed -n 's/^sha256=//p')
  : > "$_out"
  [ "$TESTOS_KIND" != none ] || return 0
  if [ "$TESTOS_SIZE" -gt 0 ]; then
    dd if="$_dev" bs=512 skip=$((TESTOS_CONFIG_LBA + 1)) count=$(( (TESTOS_SIZE + 511) / 512 )) 2>/dev/null |
      head -c "$TESTOS_SIZE" > "$_out"
  fi
  [ "$(sha256sum < "$_out" | cut -d' ' -f1)" = "$TESTOS_SHA256" ] || return 2
}

# ---------------------------------------------------------------- inside the test OS
e2e() { echo "E2E: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# Mount the API filesystems, make the busybox applets, quiet the console.
testos_early() {
  /bin/busybox mkdir -p /proc /sys /dev /run /tmp /sbin /usr/bin /usr/sbin
  /bin/busybox mount -t proc proc /proc
  /bin/busybox --install -s
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null
  mount -t tmpfs tmpfs /run
  # only KERN_ERR and worse on the console, so E2E lines are not torn by kernel messages
  echo "4 4 1 7" > /proc/sys/kernel/printk
  # Debian kernels build virtio (disk and NIC) as modules: build.sh ships them with
  # their dependencies, in load order.
  for _m in $(cat /lib/modules/testos/order 2>/dev/null); do
    insmod "/lib/modules/testos/$_m.ko" 2>/dev/null
  done
}

# The first network interface that is not lo (eth0 in QEMU), waiting up to 5 s for it.
testos_iface() {
  _i=0
  while [ $_i -lt 100 ]; do
    for _n in /sys/class/net/*; do
      _n=${_n##*/}
      [ "$_n" = lo ] || [ ! -e "/sys/class/net/$_n/address" ] || { echo "$_n"; return 0; }
    done
    sleep 0.05; _i=$((_i + 1))
  done
  return 1
}

# testos_dhcp: DHCP on the first interface with busybox udhcpc. Sets TESTOS_IFACE,
# TESTOS_IP (addr/prefix), TESTOS_DHCP_HOSTNAME. Returns non-zero without a lease.
testos_dhcp() {
  TESTOS_IFACE="" TESTOS_IP="" TESTOS_DHCP_HOSTNAME=""
  ip link set lo up
  TESTOS_IFACE=$(testos_iface) || { echo "no network interface" >&2; return 1; }
  ip link set "$TESTOS_IFACE" up
  # wait for carrier, or the first DISCOVER is lost
  _i=0
  while [ "$(cat "/sys/class/net/$TESTOS_IFACE/carrier" 2>/dev/null)" != 1 ] && [ $_i -lt 200 ]; do
    sleep 0.05; _i=$((_i + 1))
  done
  rm -f /run/testos-dhcp.env
  udhcpc -i "$TESTOS_IFACE" -n -q -t 10 -T 2 -s /usr/share/testos/udhcpc.script >/dev/null 2>&1 || return 1
  TESTOS_IP=$(ip -4 -o addr show dev "$TESTOS_IFACE" | awk '{print $4; exit}')
  TESTOS_DHCP_HOSTNAME=$(sed -n 's/^hostname=//p' /run/testos-dhcp.env 2>/dev/null)
  [ -n "$TESTOS_IP" ]
}

# fetch URL FILE [TRIES]: HTTP GET with busybox wget (curl is not in the test OS; never
# wget -T: busybox 1.35's segfaults, the timeout applet bounds it instead).
fetch() {
  _t=0
  while :; do
    timeout 60 wget -q -O "$2" "$1" 2>/tmp/fetch.err && return 0
    _t=$((_t + 1))
    if [ "$_t" -ge "${3:-5}" ]; then
      echo "fetch $1: $(tr '\n' ' ' < /tmp/fetch.err)" >&2; return 1
    fi
    sleep 2
  done
}

# ---------------------------------------------------------------- reading configs
# ign_file_source FILE PATH: contents.source of the storage.files[] entry with that
# path in an Ignition JSON file (either key order; no nested objects inside contents,
# which is what slipway renders). Prints nothing if there is none.
ign_file_source() {
  _p=$(printf '%s' "$2" | sed 's/[].[\/*^$]/\\&/g')
  _flat=$(tr -d '\n\r' < "$1")
  _s=$(printf '%s\n' "$_flat" |
    sed -n "s/.*\"source\" *: *\"\([^\"]*\)\"[^{}]*}[^{}]*\"path\" *: *\"$_p\".*/\1/p")
  [ -n "$_s" ] || _s=$(printf '%s\n' "$_flat" |
    sed -n "s/.*\"path\" *: *\"$_p\"[^{}]*\"contents\" *: *{[^{}]*\"source\" *: *\"\([^\"]*\)\".*/\1/p")
  printf '%s\n' "$_s"
}

# data_url_decode URL: the bytes of a data: URL (RFC 2397, base64 or percent-encoded).
data_url_decode() {
  _meta=${1%%,*} _data=${1#*,}
  case "$_meta" in
    data:*";base64") printf '%s' "$_data" | base64 -d ;;
    data:*) printf '%b' "$(printf '%s' "$_data" | sed 's/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')" ;;
    *) return 1 ;;
  esac
}
