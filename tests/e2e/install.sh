#!/usr/bin/env bash
# End-to-end INSTALL with slipway as the only DHCP/TFTP/HTTP/DNS server: QEMU VMs with a
# virtio disk PXE-boot a Flatcar-shaped test OS (tests/e2e/testos/: the live system runs
# slipway's install script, whose `flatcar-install` stand-in writes
# <mirror>/<version>/flatcar_production_image.bin.bz2 to /dev/vda and stores the node's
# Ignition config on it), report `installed`, reboot; slipway then answers "boot from
# local disk"; the installed system reports `ready` and powers off.
#
#   tests/e2e/install.sh                  # vm0 BIOS, vm1 UEFI
#   NVMS=8 tests/e2e/install.sh           # a fleet, mixed firmware
#   LOSS=5 tests/e2e/install.sh           # drop 5% of the packets to and from slipway
#   KILL=1 tests/e2e/install.sh           # SIGKILL slipway mid-install, restart it
#   STRANGER=1 tests/e2e/install.sh       # plus a VM whose MAC is not in the file: it boots nothing
#   TESTOS=real tests/e2e/install.sh      # the real-init test OS (tests/e2e/realos/): the real
#                                         # Ignition engine and systemd, asserted from the VM
#
# Asserts per VM: its reserved address, the installer ran, the disk booted with its own
# hostname, and the lifecycle history in `slipway status --json` / the API:
# booting -> installing -> installed -> ready.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
W=${W:-/tmp/slipway-install-$$}
NS=${NS:-slw-inst-$$}
NVMS=${NVMS:-2}
TESTOS=${TESTOS:-busybox}
case "$TESTOS" in busybox) VM_TIMEOUT=${VM_TIMEOUT:-300} ;; real) VM_TIMEOUT=${VM_TIMEOUT:-1500} ;;
  *) echo "TESTOS must be busybox or real, not '$TESTOS'" >&2; exit 2 ;; esac
SLIPWAY=${SLIPWAY:-$ROOT/target/debug/slipway}
SUBNET=10.99.0
SRV=$SUBNET.1
HTTP_PORT=8080
VERSION=4081.2.0

log() { printf '[install %s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh
need_root_and_binary
mkdir -p "$W"/{www,run,logs,state}

# ---------------------------------------------------------------- the test OS, in Flatcar's layout
if [ "$TESTOS" = real ]; then
  # (the Kubernetes version of cluster_tail: the sysext slipway's unit downloads)
  log "building the real-init test OS into $W/www/$VERSION (cold: minutes; cached: see README)"
  TB0=$(date +%s.%N)
  # It is built into a stand-in vendor upstream ($W/upstream, signed below) and reaches
  # slipway's asset mirror the way a user's does: through `slipway mirror`.
  K8S_VERSION=v1.31.2 tests/e2e/realos/build.sh "$W/upstream" "$VERSION" >"$W/logs/testos-build.log" 2>&1 ||
    { tail -n 30 "$W/logs/testos-build.log" >&2; exit 1; }
  log "real-init test OS built in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $TB0}") s"
  publish_upstream "$W/upstream" "$VERSION"
else
  log "building the test OS into $W/www/$VERSION"
  tests/e2e/testos/build.sh "$W/www" "$VERSION" >"$W/logs/testos-build.log" 2>&1 ||
    { tail -n 30 "$W/logs/testos-build.log" >&2; exit 1; }
fi

# ---------------------------------------------------------------- the cluster file
{
  cluster_head "tests/e2e/install.sh: Flatcar (a Flatcar-shaped test OS) installed to disk."
  cluster_flatcar_os "$VERSION"
  cluster_tail
  for ((i=0; i<NVMS; i++)); do
    printf '  - {mac: "%s", hostname: vm%d, ip: %s.%d, roles: [%s]}\n' "$(mac_of "$i")" "$i" "$SUBNET" $((11 + i)) "$(node_role "$i")"
  done
} > "$W/cluster.yaml"
if [ "$TESTOS" = real ]; then
  # A virtual API endpoint: the control plane gets kube-vip's static pod (checked below).
  sed -i "s|^kubernetes: {version: \([^,]*\), |kubernetes: {version: \1, control_plane_endpoint: '$SUBNET.10:6443', |" "$W/cluster.yaml"
  grep -q "control_plane_endpoint: '$SUBNET.10:6443'" "$W/cluster.yaml" || die "no VIP in the cluster file"
  # The sysext comes from the stand-in upstream through `slipway mirror` too.
  sed -i "s|^kubernetes: {version: \([^,]*\), |kubernetes: {version: \1, sysext_url: '$UPSTREAM_URL/extensions', |" "$W/cluster.yaml"
  grep -q "sysext_url: '$UPSTREAM_URL/extensions'" "$W/cluster.yaml" || die "no sysext_url in the cluster file"
fi
check_cluster
if [ "$TESTOS" = real ]; then
  TM0=$(date +%s.%N)
  for part in os kubernetes; do
    "$SLIPWAY" --offline mirror "$W/cluster.yaml" --only "$part" >"$W/logs/mirror-$part.log" 2>&1 ||
      { cat "$W/logs/mirror-$part.log" >&2; die "slipway mirror --only $part failed"; }
  done
  grep -h "verified" "$W/logs"/mirror-*.log | sed 's/^/  /' >&2
  log "slipway mirror filled $W/www from the upstream in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $TM0}") s"
  "$SLIPWAY" --offline check --assets "$W/cluster.yaml" >"$W/logs/assets.log" 2>&1 ||
    { cat "$W/logs/assets.log" >&2; die "check --assets: the mirror is incomplete"; }
fi

# ---------------------------------------------------------------- network + servers
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  set +e
  [ -n "${UPSTREAM_PID:-}" ] && kill "$UPSTREAM_PID" 2>/dev/null
  stop_vms
  net_down "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
net_up $((NVMS + 1))   # one more tap for the stranger
start_slipway
wait_ready
sleep 0.5

# ---------------------------------------------------------------- VMs
run_vm() {
  local i=$1 mac fwargs=() nicopt="" mem=384 t0 t1 rc=0 fw=bios disk=256M
  mac=$(mac_of "$i")
  [ $((i % 2)) = 1 ] && fw=uefi
  # the real-init OS: a 500 MiB image, and the live system holds its root and the
  # downloaded image in RAM
  [ "$TESTOS" = real ] && { mem=1536; disk=2G; }
  truncate -s "$disk" "$W/run/vm$i.disk"
  if [ "$fw" = uefi ]; then
    [ "$TESTOS" = real ] || mem=512
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/run/vm$i.vars.fd"
    fwargs=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
            -drive if=pflash,format=raw,file="$W/run/vm$i.vars.fd")
    nicopt=",romfile="
    # OVMF would try IPv6 PXE/HTTP boot on the NIC before the disk.
    fwargs+=(-fw_cfg name=opt/org.tianocore/IPv6Support,string=no)
  fi
  t0=$(date +%s.%N)
  # Network first, then the disk: after the install, slipway's answer sends it to the disk.
  timeout --kill-after=5 "$VM_TIMEOUT" ip netns exec "$NS" qemu-system-x86_64 \
      -accel tcg -m "$mem" -nodefaults -nographic -monitor none "${fwargs[@]}" \
      -netdev tap,id=n0,ifname="tap$i",script=no,downscript=no \
      -device "virtio-net-pci,netdev=n0,mac=$mac$nicopt,bootindex=1" \
      -drive "file=$W/run/vm$i.disk,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0,bootindex=2 \
      -serial stdio -pidfile "$W/run/vm$i.pid" \
      </dev/null 2>"$W/logs/vm$i.qemu.err" | tr -d '\r' | sed -u 's/\x1b\[[0-9;?=]*[A-Za-z]//g' >"$W/logs/vm$i.serial" || rc=$?
  t1=$(date +%s.%N)
  echo "$rc $(awk "BEGIN{print $t1 - $t0}") $fw" > "$W/run/vm$i.result"
}
if [ "${LOSS:-0}" != 0 ]; then
  # No tc netem in this kernel: nftables drops LOSS% of what slipway sends and receives.
  printf 'table inet loss {\n  chain in { type filter hook input priority 0; iifname "br0" numgen random mod 100 < %s counter drop; }\n  chain out { type filter hook output priority 0; oifname "br0" numgen random mod 100 < %s counter drop; }\n}\n' "$LOSS" "$LOSS" > "$W/run/loss.nft"
  ip netns exec "$NS" nft -f "$W/run/loss.nft"
  log "dropping ${LOSS}% of slipway's packets"
fi
if [ "${KILL:-0}" = 1 ]; then
  # Crash slipway once the first machine is installing, then start it again.
  (
    for _ in $(seq 600); do
      grep -q 'to=installing' "$W/logs/slipway.log" 2>/dev/null && break
      sleep 0.1
    done
    kill -9 "$SLIPWAY_PID" 2>/dev/null
    log "SIGKILLed slipway mid-install"
    sleep 1
    start_slipway
    echo "$SLIPWAY_PID" > "$W/run/slipway2.pid"
    log "slipway restarted"
  ) &
  KILLER=$!
fi
log "installing $NVMS VM(s) through slipway, netns $NS"
T0=$(date +%s.%N)
JOBS=()
for ((i=0; i<NVMS; i++)); do run_vm "$i" & JOBS+=($!); done
if [ "${STRANGER:-0}" = 1 ]; then
  # A machine slipway does not know: 45 s of PXE attempts must get it nothing.
  (timeout 45 ip netns exec "$NS" qemu-system-x86_64 -accel tcg -m 256 -nodefaults -nographic -monitor none \
      -netdev tap,id=n0,ifname="tap$NVMS",script=no,downscript=no \
      -device "virtio-net-pci,netdev=n0,mac=52:54:00:77:77:77,bootindex=1" -serial stdio \
      </dev/null 2>/dev/null | tr -d '\r' | sed -u 's/\x1b\[[0-9;?=]*[A-Za-z]//g' >"$W/logs/stranger.serial" || true) &
  JOBS+=($!)
fi
for j in "${JOBS[@]}"; do wait "$j" || true; done
[ -n "${KILLER:-}" ] && wait "$KILLER" 2>/dev/null
[ -f "$W/run/slipway2.pid" ] && PIDS+=("$(cat "$W/run/slipway2.pid")")
T1=$(date +%s.%N)

# ---------------------------------------------------------------- verdict
# real_checks I SERIAL: the real-init OS's own account (its E2E lines), one "ok|FAIL what"
# line per assertion; fails if any failed.
real_checks() {
  local i=$1 s=$2 ip=$SUBNET.$(($1 + 11)) bad=0 l
  check() {   # WHAT REGEX
    if l=$(grep -a -m1 -E "$2" "$s"); then echo "ok   $1: ${l#*E2E: }" | cut -c1-220
    else echo "FAIL $1 (no line matching: $2)"; bad=1; fi
  }
  check "live Ignition (metal) ran"      'E2E: LIVE IGNITION result=\{'
  check "live DHCP, reserved address"    "E2E: LIVE DHCP OK [a-z0-9]+=$ip/"
  check "live install script"            'E2E: LIVE FILE /opt/slipway/install.sh mode=755'
  check "flatcar-install stored config"  'E2E: FLATCAR-INSTALL config stored kind=ignition'
  check "installed Ignition (file) ran"  'E2E: IGNITION result=\{.*"userConfigProvided":true'
  check "Ignition journal, no critical"  'E2E: IGNITION journal finished=[1-9][0-9]* critical=0 .*platform=file'
  check "containerd active"              'E2E: UNIT containerd.service active=active'
  check "containerd runs slipway's TOML" 'E2E: CONTAINERD pid=[0-9]+ cri=yes cmdline=.*--config /etc/containerd/config.toml'
  check "slipway-sysext active"          'E2E: UNIT slipway-sysext.service active=active'
  check "kubeadm.service active"         'E2E: UNIT kubeadm.service active=active'
  check "kubeadm parsed its config"      'E2E: K8S .*"config_ok": true.*"tool": "kubeadm"'
  check "kubelet (sysext unit) active"   'E2E: UNIT kubelet.service active=active'
  check "no failed unit"                 'E2E: FAILED-UNITS none'
  check "static address, no DHCP"        "E2E: ADDRESS iface=[a-z0-9]+ mac=$(mac_of "$i") inet=$ip/24 dhcp=no network-file=/etc/systemd/network/00-slipway.network state=routable"
  check "hostname"                       "E2E: HOSTNAME static=vm$i kernel=vm$i"
  check "user core with the key"         'E2E: USER core uid=[0-9]+ home=/home/core keys=1 .*comments=e2e@test'
  check "pki keys 0600"                  'E2E: PKI-KEYS files=[0-9]+ ok'
  check "sysext merged"                  'E2E: SYSEXT /usr +kubernetes'
  check "ready unit (curl -f) succeeded" 'E2E: READY-REPORT unit=slipway-ready.service result=success status=0 marker=yes'
  if [ "$(node_role "$i")" = control-plane ]; then
    # The init node of a VIP cluster: kube-vip's pod where kubeadm's kubelet reads static
    # pods, on the interface that holds the node's address, with super-admin.conf
    # (kubeadm >= 1.29 during init); the pod network applied from here.
    check "kube-vip unit active"         'E2E: UNIT slipway-kube-vip.service active=active'
    check "kube-vip static pod"          "E2E: KUBE-VIP manifest=/etc/kubernetes/manifests/kube-vip.yaml mode=644 interface=([a-z0-9]+) node-iface=\1 address=$SUBNET.10 kubeconfig=/etc/kubernetes/super-admin.conf"
    check "CNI unit on the init node"    'E2E: UNIT slipway-cni.service active=active enabled=enabled'
  else
    check "no kube-vip on a worker"      'E2E: KUBE-VIP none'
    check "no CNI unit on a worker"      'E2E: UNIT slipway-cni.service active=inactive enabled= '
  fi
  return $bad
}
ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" status "$W/cluster.yaml" --json > "$W/logs/status.json" || true
fail=0
for ((i=0; i<NVMS; i++)); do
  read -r rc secs fw < "$W/run/vm$i.result" || { rc=?; secs=0; fw=?; }
  s=$W/logs/vm$i.serial
  ok=PASS
  grep -q "slipway: vm$i on " "$s"                  || ok=FAIL   # iPXE ran the install script
  grep -q "E2E: READY hostname=vm$i" "$s"            || ok=FAIL   # the installed disk booted as itself
  if [ "$TESTOS" = real ]; then
    real_checks "$i" "$s" > "$W/logs/vm$i.checks" || ok=FAIL
  else
    grep -q "E2E: LIVE DHCP OK $SUBNET.$((11 + i))/" "$s" || ok=FAIL  # with its reserved address
    grep -q "E2E: READY-REPORT http=200" "$s"          || ok=FAIL   # and told slipway
  fi
  hist=$(machine_state "$W/logs/status.json" "vm$i")
  [ "$hist" = ready ] || ok=FAIL
  note=""
  if [ "$rc" != 0 ]; then
    # The guest reported ready (asserted above) and began its own poweroff, then its
    # kernel locked up there (seen under TCG on an oversubscribed host: "soft lockup",
    # "rcu_preempt kthread starved"): the emulator's hang, not slipway's; noted, not failed.
    if [ "$rc" = 124 ] && grep -q 'E2E: INSTALLED powering off' "$s" && [ "$TESTOS" = busybox ]; then
      note="  (guest hung in its poweroff under TCG; killed at VM_TIMEOUT)"
    else
      ok=FAIL
    fi
  fi
  # The history, in order, and the time from the first sign of life to ready.
  ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" events "$W/cluster.yaml" "vm$i" > "$W/logs/vm$i.events" 2>/dev/null || true
  path=$(awk '$3 != $5 {print $5}' "$W/logs/vm$i.events" | tr '\n' ' ')
  case "$path" in *"booting installing installed ready"*) ;; *) ok=FAIL ;; esac
  ttr=$(awk 'NR==1 {first=$1} $5=="ready" && $3!="ready" {print $1-first}' "$W/logs/vm$i.events")
  printf 'vm%-3s %s  fw=%-5s qemu_rc=%s  wall=%6.2fs  state=%-6s ready_after=%ss  path: %s%s\n' "$i" "$ok" "$fw" "$rc" "$secs" "$hist" "${ttr:-?}" "$path" "$note"
  [ "$TESTOS" = real ] && sed "s/^/  vm$i: /" "$W/logs/vm$i.checks"
  [ "$ok" = PASS ] || { fail=1; tail -n 40 "$s" | sed "s/^/  vm$i| /"; }
done
ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" status "$W/cluster.yaml" | sed 's/^/  /'
ip netns exec "$NS" "$SLIPWAY" --offline --state-dir "$W/state" events "$W/cluster.yaml" vm0 | sed 's/^/  /'
if [ "${KILL:-0}" = 1 ] && [ ! -f "$W/run/slipway2.pid" ]; then
  log "slipway was never killed and restarted"; fail=1
fi
if [ "${STRANGER:-0}" = 1 ]; then
  if grep -q 'ignoring a machine that is not in the cluster file.*52:54:00:77:77:77\|52:54:00:77:77:77.*ignoring a machine' "$W/logs/slipway.log" &&
     ! grep -q 'lease mac=52:54:00:77:77:77' "$W/logs/slipway.log" && ! grep -q 'LIVE\|slipway:' "$W/logs/stranger.serial"; then
    printf 'stranger PASS  52:54:00:77:77:77 got no lease and booted nothing\n'
  else
    printf 'stranger FAIL\n'; fail=1
  fi
fi
# No address handed out twice: each address appears with one MAC only.
dups=$(grep -o 'lease mac=[0-9a-f:]* ip=[0-9.]*' "$W/logs/slipway.log" | sort -u | awk '{print $3}' | sort | uniq -d)
[ -z "$dups" ] || { log "addresses given to more than one MAC: $dups"; fail=1; }
if [ "${LOSS:-0}" != 0 ]; then
  log "packets dropped: $(ip netns exec "$NS" nft list table inet loss | grep -o 'packets [0-9]*' | awk '{s+=$2} END {print s+0}')"
fi
[ "$fail" = 0 ] || { log "slipway log tail:"; tail -n 40 "$W/logs/slipway.log" >&2; }
printf 'TOTAL: %d VM(s) installed %s in %.2fs\n' "$NVMS" "$([ $fail = 0 ] && echo PASS || echo FAIL)" "$(awk "BEGIN{print $T1 - $T0}")"
exit $fail
