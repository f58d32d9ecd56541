#!/usr/bin/env bash
# End-to-end PROVISION through IPMI: `slipway provision` takes QEMU machines from power
# off to `ready` with no other hand on them. Each VM sits behind its own BMC, OpenIPMI's
# `ipmi_sim` (RMCP+, cipher suite 3) on 10.99.0.1:623<i> in the test's network
# namespace; its chassis control program (crates/bmc/tests/support/ipmi/chassis-control.sh)
# starts the VM's QEMU on "power on" (tests/e2e/provision/vm.sh, the hardware of
# tests/e2e/install.sh, network first when the BMC's boot device is pxe, disk first
# otherwise), kills it on "power off", and reports "off" once QEMU has exited. The
# VMs start powered off with empty disks; slipway serve (as in install.sh) installs
# the Flatcar-shaped test OS (tests/e2e/testos/), which reports `ready` and powers off.
#
#   tests/e2e/provision.sh                 # vm0 BIOS, vm1 UEFI
#   NVMS=4 tests/e2e/provision.sh          # more, mixed firmware
#   KEEP=1 tests/e2e/provision.sh          # keep the work directory (logs, consoles)
#
# Asserts: `slipway provision FILE --all` exits 0; per VM, its lifecycle path in the API
# includes booting -> installing -> installed -> ready, the installed disk booted as
# itself, the BMC was told "boot pxe" then "power on" (chassis log) and nothing else
# powered it, QEMU ran exactly once and powered itself off, and ipmitool and
# `slipway power status` both read the chassis as off at the end. And, negatively:
# `slipway power status` with a wrong BMC password fails with an authentication
# error naming the user, without printing the password; with the password variable
# unset, it fails naming the variable.
#
# Faults, any together (scripts/test runs them all at once, with more VMs than cores):
#   LOSS=5        drop 5% of slipway's packets (nftables)
#   KILL=1        SIGKILL slipway once the first machine installs, start it again
#   STRANGER=1    a machine slipway does not know PXE-boots on the same wire for 60 s
#   WEDGE=1       vm1 freezes in its firmware after loading the chain script (SIGSTOP)
#   INSTALL_TIMEOUT=90s  the stall timeout: a machine stuck anywhere before ready is
#                 power-cycled through its BMC (event `retried`) after this long
# Under LOSS or KILL a machine may be power-cycled more than once; each extra power
# action must match a `retried` event, and every machine must still end ready.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/e2e/provision
W=${W:-/tmp/slipway-provision-$$}
NS=${NS:-slw-prov-$$}
NVMS=${NVMS:-2}
PROVISION_TIMEOUT=${PROVISION_TIMEOUT:-400}
SLIPWAY=${SLIPWAY:-$ROOT/target/debug/slipway}
SUBNET=10.99.0
SRV=$SUBNET.1
HTTP_PORT=8080
VERSION=4081.2.0
BMC_PORT0=6230
BMC_USER="admin"
BMC_PW_VAR=SLIPWAY_E2E_BMC_PASSWORD
BMC_PW="Prov-e2e-$$-pw"      # at most 20 bytes (IPMI v2.0)
WRONG_PW="Wr0ng-$$-secret"

log() { printf '[provision %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh
need_root_and_binary
for p in ipmi_sim:openipmi ipmitool:ipmitool qemu-system-x86_64:qemu-system-x86 dnsmasq:dnsmasq python3:python3; do
  command -v "${p%%:*}" >/dev/null || die "${p%%:*} is not installed (apt-get install -y ${p#*:})"
done
TSTART=$(now)
mkdir -p "$W"/{www,run,logs,state,bmc}

# ---------------------------------------------------------------- cleanup
SIMS=()      # the BMCs (subreaper -> ipmi_sim); dnsmasq and slipway serve are in PIDS
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  set +e
  local f p i
  [ -n "${BGPID:-}" ] && kill "$BGPID" 2>/dev/null
  # The BMCs first, so that nothing powers a machine on again.
  for p in "${SIMS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${SIMS[@]}"; do wait "$p" 2>/dev/null; done
  # Machines left on: the start command's process group, then QEMU itself.
  for ((i=0; i<NVMS; i++)); do
    f=$W/bmc/vm$i/chassis/pid
    [ -s "$f" ] && p=$(cat "$f" 2>/dev/null) && [ "$p" -gt 1 ] 2>/dev/null && kill -TERM -- "-$p" 2>/dev/null
    f=$W/run/vm$i.pid
    [ -s "$f" ] && p=$(cat "$f" 2>/dev/null) && [ "$(ps -o comm= -p "$p" 2>/dev/null)" = qemu-system-x86 ] && kill "$p"
  done
  # Then everything else in the namespace (slipway provision and serve, dnsmasq).
  [ -n "${PROV:-}" ] && PIDS+=("$PROV")
  net_down "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the test OS, in Flatcar's layout
log "building the test OS into $W/www/$VERSION"
# Long steps run in the background and are waited for, so that INT/TERM (which bash
# holds back while a foreground command runs) clean up at once.
bgwait() { "$@" & BGPID=$!; wait "$BGPID"; }
bgwait timeout 600 tests/e2e/testos/build.sh "$W/www" "$VERSION" >"$W/logs/testos-build.log" 2>&1 ||
  { tail -n 30 "$W/logs/testos-build.log" >&2; die "test OS build failed"; }

# ---------------------------------------------------------------- the cluster file, with BMCs
{
  cluster_head "tests/e2e/provision.sh: machines behind IPMI BMCs (ipmi_sim), provisioned
# by \`slipway provision\` from power off to ready."
  cluster_flatcar_os "$VERSION"
  cluster_tail
  for ((i=0; i<NVMS; i++)); do
    printf '  - mac: "%s"\n    hostname: vm%d\n    ip: %s.%d\n    roles: [%s]\n' "$(mac_of "$i")" "$i" "$SUBNET" $((11 + i)) "$(node_role "$i")"
    printf '    bmc: {driver: ipmi, address: %s, port: %d, user: %s, password_env: %s, cipher_suite: 3}\n' \
      "$SRV" $((BMC_PORT0 + i)) "$BMC_USER" "$BMC_PW_VAR"
  done
} > "$W/cluster.yaml"
check_cluster

# ---------------------------------------------------------------- network + slipway serve
net_up $((NVMS + 1))   # one more tap for the stranger
# serve gets the BMC password too: it retries stalled installs through the BMC.
start_slipway "$BMC_PW_VAR=$BMC_PW"
wait_ready

# ---------------------------------------------------------------- the BMCs
ipmi() { # PORT PASSWORD ARGS...: ipmitool as the BMC user, inside the namespace
  local port=$1 pw=$2; shift 2
  ip netns exec "$NS" env IPMI_PASSWORD="$pw" timeout 30 \
    ipmitool -I lanplus -C 3 -H "$SRV" -p "$port" -U "$BMC_USER" -E -N 1 -R 3 "$@"
}
cat > "$W/bmc/sim.emu" <<'EOF'
# ipmi_sim command file (see ipmi_sim_cmd(5)): one BMC at IPMB address 20h.
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x03 9 8 0x9f 4753 0x0f02
mc_enable 0x20
EOF
for ((i=0; i<NVMS; i++)); do
  d=$W/bmc/vm$i
  mkdir -p "$d/state" "$d/chassis"
  cat > "$d/lan.conf" <<EOF
# ipmi_sim (see ipmi_lan(5)): the BMC of vm$i.
name "vm$i-bmc"
set_working_mc 0x20
  startlan 1
    addr $SRV $((BMC_PORT0 + i))
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa1234567890000$(printf '%02x' "$i")
  endlan
  chassis_control "$ROOT/crates/bmc/tests/support/ipmi/chassis-control.sh 0x20"
  user 2 true "$BMC_USER" "$BMC_PW" admin 10 md5
EOF
  cat > "$d/chassis.conf" <<EOF
SLIPWAY_CHASSIS_STATE='$d/chassis'
SLIPWAY_CHASSIS_START='exec $HERE/vm.sh $W $i'
SLIPWAY_CHASSIS_KILL_WAIT=5
EOF
  # The VM's hardware exists before its first power on: an empty disk, fresh NVRAM.
  truncate -s 256M "$W/run/vm$i.disk"
  [ $((i % 2)) = 1 ] && cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/run/vm$i.vars.fd"
  ip netns exec "$NS" env -u SLIPWAY_CHASSIS_STATE -u SLIPWAY_CHASSIS_START \
      SLIPWAY_CHASSIS_CONF="$d/chassis.conf" VM_TIMEOUT=$((PROVISION_TIMEOUT + 30)) \
      python3 "$HERE/subreaper.py" ipmi_sim -n -c "$d/lan.conf" -f "$W/bmc/sim.emu" -s "$d/state" \
      </dev/null >"$W/logs/ipmi_sim$i.out" 2>&1 &
  SIMS+=($!)
done
for ((i=0; i<NVMS; i++)); do
  up=0
  for _ in $(seq 20); do
    out=$(ipmi $((BMC_PORT0 + i)) "$BMC_PW" chassis power status 2>&1) && { up=1; break; }
    kill -0 "${SIMS[$i]}" 2>/dev/null || break
    sleep 0.5
  done
  [ "$up" = 1 ] || { cat "$W/logs/ipmi_sim$i.out" >&2; die "the BMC of vm$i does not answer: $out"; }
  [ "$out" = "Chassis Power is off" ] || die "vm$i is not off at the start: $out"
  wc -l < "$W/bmc/vm$i/chassis/log" > "$W/run/vm$i.log0"
done
log "$NVMS BMC(s) up on $SRV:$BMC_PORT0.., all machines off; netns $NS"

# ---------------------------------------------------------------- faults, all at once
FAULTS=0
if [ "${LOSS:-0}" != 0 ]; then loss_on "$LOSS"; FAULTS=1; fi
if [ "${KILL:-0}" = 1 ]; then kill_once_installing "$BMC_PW_VAR=$BMC_PW"; FAULTS=1; fi
if [ "${STRANGER:-0}" = 1 ]; then stranger_vm "$NVMS" 60; fi
if [ -n "${WEDGE:-}" ]; then
  # A machine stuck in its firmware (as OVMF can be after a server restart): vm$WEDGE
  # is frozen (SIGSTOP) once it has loaded the chain script, and stays frozen until its
  # BMC powers it off. Only slipway's stall detection can get it going again.
  (
    for _ in $(seq 3000); do
      grep -q 'boot.ipxe' "$W/logs/vm$WEDGE.serial" 2>/dev/null && [ -s "$W/run/vm$WEDGE.pid" ] && break
      sleep 0.1
    done
    kill -STOP "$(cat "$W/run/vm$WEDGE.pid")" && log "froze vm$WEDGE in its firmware"
  ) &
  WEDGER=$!
  FAULTS=1
fi

# ---------------------------------------------------------------- slipway provision
log "slipway provision --all --timeout $PROVISION_TIMEOUT"
T0=$(now)
set +e
(
  ip netns exec "$NS" env "$BMC_PW_VAR=$BMC_PW" timeout --kill-after=10 $((PROVISION_TIMEOUT + 60)) \
    "$SLIPWAY" --offline --state-dir "$W/state" provision "$W/cluster.yaml" --all --timeout "$PROVISION_TIMEOUT" \
    2>&1 </dev/null | tee "$W/logs/provision.out" | sed -u 's/^/  provision| /' >&2
  exit "${PIPESTATUS[0]}"
) &
PROV=$!
wait $PROV
PRC=$?
PROV=
set -e
T1=$(now)
log "provision exited $PRC after $(awk "BEGIN{printf \"%.1f\", $T1 - $T0}")s"

# The installed systems power themselves off after `ready`: wait for every chassis to say so.
for _ in $(seq 60); do
  off=0
  for ((i=0; i<NVMS; i++)); do grep -q '^exit ' "$W/run/vm$i.power" 2>/dev/null && off=$((off + 1)); done
  [ "$off" = "$NVMS" ] && break
  sleep 0.5
done

# ---------------------------------------------------------------- verdict
fail=0
[ "$PRC" = 0 ] || { log "slipway provision exited $PRC"; fail=1; }
grep -q "^provisioned $NVMS of $NVMS in" "$W/logs/provision.out" || { log "provision did not report all $NVMS provisioned"; fail=1; }
ip netns exec "$NS" timeout 30 "$SLIPWAY" --offline --state-dir "$W/state" status "$W/cluster.yaml" --json > "$W/logs/status.json" || true
ip netns exec "$NS" env "$BMC_PW_VAR=$BMC_PW" timeout 60 "$SLIPWAY" --offline power "$W/cluster.yaml" status --all \
  > "$W/logs/power-status.out" 2>&1 || true
for ((i=0; i<NVMS; i++)); do
  s=$W/logs/vm$i.serial
  port=$((BMC_PORT0 + i))
  ok=PASS
  why=()
  fw=bios; [ $((i % 2)) = 1 ] && fw=uefi
  # The machine: installed with its reserved address, booted its disk as itself, reported.
  grep -q "slipway: vm$i on " "$s" 2>/dev/null                    || why+=("the install script never ran")
  grep -q "E2E: LIVE DHCP OK $SUBNET.$((11 + i))/" "$s" 2>/dev/null || why+=("no reserved address in the live system")
  grep -q "E2E: READY hostname=vm$i" "$s" 2>/dev/null              || why+=("the installed disk did not boot as vm$i")
  grep -q "E2E: READY-REPORT http=200" "$s" 2>/dev/null            || why+=("no ready report")
  # The lifecycle, from the API.
  state=$(python3 - "$W/logs/status.json" "vm$i" <<'PY' 2>/dev/null || echo '?'
import json, sys
machines = json.load(open(sys.argv[1]))["machines"]
m = next((m for m in machines if m["hostname"] == sys.argv[2]), None)
print(m["state"] if m else "?")
PY
)
  [ "$state" = ready ] || why+=("state $state, not ready")
  ip netns exec "$NS" timeout 30 "$SLIPWAY" --offline --state-dir "$W/state" events "$W/cluster.yaml" "vm$i" > "$W/logs/vm$i.events" 2>/dev/null || true
  path=$(awk '$3 != $5 {print $5}' "$W/logs/vm$i.events" | tr '\n' ' ')
  case "$path" in *"booting installing installed ready"*) ;; *) why+=("lifecycle path: $path") ;; esac
  # The BMC: what slipway told it (the chassis log since the BMC came up; ipmitool's
  # status reads only add "get power").
  tail -n "+$(( $(cat "$W/run/vm$i.log0") + 1 ))" "$W/bmc/vm$i/chassis/log" | grep -v 'get power$' > "$W/run/vm$i.sets" || true
  sets=$(sed 's/^0x20 //' "$W/run/vm$i.sets" | paste -sd, -)
  pxe_at=$(grep -n 'set boot pxe$' "$W/run/vm$i.sets" | head -n1 | cut -d: -f1)
  on_at=$(grep -n 'set power 1$\|set reset 1$' "$W/run/vm$i.sets" | head -n1 | cut -d: -f1)
  { [ -n "$pxe_at" ] && [ -n "$on_at" ] && [ "$pxe_at" -lt "$on_at" ]; } || why+=("chassis log lacks 'set boot pxe' then 'set power 1': $sets")
  actions=$(grep -c 'set power\|set reset\|set shutdown' "$W/run/vm$i.sets" || true)
  ons=$(grep -c '^on ' "$W/run/vm$i.power" 2>/dev/null || true)
  if [ "$FAULTS" = 0 ]; then
    # QEMU: started once, by that power on, network first.
    [ "$actions" = 1 ] || why+=("more than one power action: $sets")
    [ "$ons" = 1 ] || why+=("QEMU started ${ons:-0} times")
  else
    # Under faults a machine may stall (a lost packet, slipway gone mid-install, OVMF
    # stuck in its network stack) and be power-cycled through its BMC: each retry is a
    # `retried` event and one more power action; counted, not failed.
    # (A power off is repeated until the chassis reads off: only power-ons are counted.)
    retries=$(grep -c ' retried' "$W/logs/vm$i.events" 2>/dev/null || true)
    powerons=$(grep -c 'set power 1$\|set reset 1$' "$W/run/vm$i.sets" || true)
    [ "$powerons" = $((1 + retries)) ] || why+=("$powerons power-ons for $retries retries: $sets")
    [ "$ons" = $((1 + retries)) ] || why+=("QEMU started ${ons:-0} times for $retries retries")
  fi
  grep -q '^on .* boot=pxe ' "$W/run/vm$i.power" 2>/dev/null || why+=("QEMU was not started with boot device pxe")
  # The last run exited by itself (the guest's power off), not killed.
  grep '^exit ' "$W/run/vm$i.power" 2>/dev/null | tail -n 1 | grep -q ' rc=0$' || why+=("QEMU did not power itself off: $(grep '^exit' "$W/run/vm$i.power" 2>/dev/null | tr '\n' ' ')")
  # The final power state: ipmitool and slipway agree, off.
  ipmi_state=$(ipmi "$port" "$BMC_PW" chassis power status 2>&1 || true)
  [ "$ipmi_state" = "Chassis Power is off" ] || why+=("ipmitool: $ipmi_state")
  slw_state=$(awk -v h="vm$i" '$1 == h {$1=""; sub(/^ +/, ""); print}' "$W/logs/power-status.out")
  [ "$slw_state" = "power off" ] || why+=("slipway power status: ${slw_state:-none}")
  ready_after=$(awk -v h="vm$i" '$1 == h && $2 == "ready" {print $3}' "$W/logs/provision.out" | head -n1)
  [ -n "$ready_after" ] || why+=("slipway provision never saw it ready")
  qemu_secs=$(awk '/^on / {on=$2} /^exit / {print $2 - on}' "$W/run/vm$i.power" 2>/dev/null | head -n1)
  [ "${#why[@]}" = 0 ] || ok=FAIL
  printf 'vm%-3s %s  fw=%-5s bmc=%s:%d  ready_after=%-5s qemu_on=%6.2fs  power=%s  powered_on=%s  bmc_calls: %s\n' \
    "$i" "$ok" "$fw" "$SRV" "$port" "${ready_after:-?}" "${qemu_secs:-0}" "${ipmi_state#Chassis Power is }" "${ons:-0}" "$sets"
  printf '      path: %s\n' "$path"
  if [ "$ok" != PASS ]; then
    fail=1
    for w in "${why[@]}"; do printf '      FAIL: %s\n' "$w"; done
    tail -n 30 "$s" 2>/dev/null | sed "s/^/  vm$i| /"
  fi
done

# ---------------------------------------------------------------- the faults' own verdicts
if [ -n "${KILLER:-}" ]; then
  kill "$KILLER" 2>/dev/null || true
  wait "$KILLER" 2>/dev/null || true
  if [ -f "$W/run/slipway2.pid" ]; then
    PIDS+=("$(cat "$W/run/slipway2.pid")")
    log "slipway was SIGKILLed mid-install and restarted"
  else
    log "slipway was never killed and restarted"; fail=1
  fi
fi
if [ -n "${WEDGER:-}" ]; then
  wait "$WEDGER" 2>/dev/null || true
  wretries=$(grep -c ' retried' "$W/logs/vm$WEDGE.events" 2>/dev/null || true)
  if [ "${wretries:-0}" -ge 1 ]; then
    log "vm$WEDGE, frozen in its firmware, was noticed and power-cycled through its BMC ($wretries retry)"
  else
    log "vm$WEDGE was frozen but never retried"; fail=1
  fi
fi
if [ -n "${STRANGER_PID:-}" ]; then
  wait "$STRANGER_PID" 2>/dev/null || true
  stranger_verdict || fail=1
fi
[ "${LOSS:-0}" = 0 ] || log "packets dropped: $(loss_report)"
[ "$FAULTS" = 0 ] || log "machines power-cycled by slipway after a stall: $(cat "$W"/logs/vm*.events 2>/dev/null | grep -c ' retried' || true)"

# ---------------------------------------------------------------- negative: a wrong BMC password
set +e
neg=$(ip netns exec "$NS" env "$BMC_PW_VAR=$WRONG_PW" timeout 60 "$SLIPWAY" --offline power "$W/cluster.yaml" status vm0 2>&1)
nrc=$?
set -e
printf '%s\n' "$neg" > "$W/logs/wrong-password.out"
nwhy=()
[ "$nrc" != 0 ] && [ "$nrc" != 124 ] || nwhy+=("exit status $nrc")
grep -qi 'authentication failed' <<<"$neg" || nwhy+=("no authentication error")
grep -q "\"$BMC_USER\"" <<<"$neg" || nwhy+=("the user is not named")
! grep -qF -e "$WRONG_PW" -e "$BMC_PW" <<<"$neg" || nwhy+=("a password was printed")
if [ "${#nwhy[@]}" = 0 ]; then
  printf 'wrong-password PASS  exit %d: %s\n' "$nrc" "$(head -n1 <<<"$neg" | sed 's/  */ /g')"
else
  printf 'wrong-password FAIL  (%s): %s\n' "$(IFS=';'; echo "${nwhy[*]}")" "$neg"; fail=1
fi

# And with the variable the cluster file names not set at all: the error names it.
set +e
unset_out=$(ip netns exec "$NS" env -u "$BMC_PW_VAR" timeout 60 "$SLIPWAY" --offline power "$W/cluster.yaml" status vm0 2>&1)
urc=$?
set -e
if [ "$urc" != 0 ] && [ "$urc" != 124 ] && grep -q "$BMC_PW_VAR is not set" <<<"$unset_out"; then
  printf 'unset-password PASS  exit %d: %s\n' "$urc" "$(head -n1 <<<"$unset_out" | sed 's/  */ /g')"
else
  printf 'unset-password FAIL  exit %d: %s\n' "$urc" "$unset_out"; fail=1
fi

[ "$fail" = 0 ] || { log "slipway log tail:"; tail -n 40 "$W/logs/slipway.log" >&2; }
printf 'TOTAL: %d VM(s) provisioned through IPMI %s: provision %.2fs (exit %s), whole test %.2fs\n' \
  "$NVMS" "$([ $fail = 0 ] && echo PASS || echo FAIL)" "$(awk "BEGIN{print $T1 - $T0}")" "$PRC" "$(awk "BEGIN{print $(now) - $TSTART}")"
exit $fail
