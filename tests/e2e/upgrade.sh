#!/usr/bin/env bash
# End-to-end ROLLING RE-IMAGE: `slipway upgrade` takes a fleet installed with test-OS
# version A to version B, one node at a time, through the nodes' BMCs.
#
# The machines and BMCs are tests/e2e/provision.sh's (QEMU VMs behind OpenIPMI ipmi_sim
# BMCs in a network namespace, the busybox Flatcar-shaped test OS, built twice here: A
# and B). `slipway provision --all` installs A everywhere; the cluster file then says
# B (SIGHUP to serve), and `slipway upgrade FILE --max-unavailable 1 --include-init-node`
# re-images every node (vm0 the control plane first, then the workers), with a pre-hook
# and a post-hook that log what they were given. (vm0 is the `kubeadm init` node, left
# alone without --include-init-node; the test OS runs no kubeadm.)
#
#   tests/e2e/upgrade.sh                 # 4 VMs (vm0 control plane; even BIOS, odd UEFI)
#   NVMS=3 tests/e2e/upgrade.sh
#   KEEP=1 tests/e2e/upgrade.sh          # keep the work directory (logs, consoles)
#   MAXU=2 tests/e2e/upgrade.sh          # --max-unavailable 2: workers two at a time
#
# Asserts: `upgrade --dry-run` before the change plans nothing ("up to date"), after it
# lists every node with "os A -> B" in one-node waves, control plane first; the rollout
# exits 0; every node ends `ready`, recorded as installed with B (status --json), its
# last boot printed "version=B" on its console; from the machines' events (reinstall
# -> ready), never two nodes down at once; each node's pre-hook ran before its
# re-arm and its post-hook after its ready, with SLIPWAY_NODE/NODE_IP/ROLE set.
#
# Faults (any together):
#   FAIL=2     vm2's BMC is gone when its turn comes: the rollout HALTS (exit 1) with
#              the nodes after it untouched (no re-arm, no power action); the BMC comes
#              back and a re-run resumes (nodes done stay done, vm2 starts over)
#   KILL=1     `slipway upgrade` and `slipway serve` are SIGKILLed while vm1 installs;
#              serve is started again and a re-run resumes: vm1 is followed, not
#              re-armed again; no node is re-armed twice
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/e2e/provision
W=${W:-/tmp/slipway-upgrade-$$}
NS=${NS:-slw-upg-$$}
NVMS=${NVMS:-4}
MAXU=${MAXU:-1}
TIMEOUT=${TIMEOUT:-400}
SLIPWAY=${SLIPWAY:-$ROOT/target/debug/slipway}
SUBNET=10.99.0
SRV=$SUBNET.1
HTTP_PORT=8080
VA=4081.2.0
VB=4116.0.0
BMC_PORT0=6230
BMC_USER="admin"
BMC_PW_VAR=SLIPWAY_E2E_BMC_PASSWORD
BMC_PW="Upg-e2e-$$-pw"

log() { printf '[upgrade %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh
need_root_and_binary
for p in ipmi_sim:openipmi ipmitool:ipmitool qemu-system-x86_64:qemu-system-x86 dnsmasq:dnsmasq python3:python3; do
  command -v "${p%%:*}" >/dev/null || die "${p%%:*} is not installed (apt-get install -y ${p#*:})"
done
TSTART=$(now)
mkdir -p "$W"/{www,run,logs,state,bmc}

declare -A SIMS=()   # VM number -> its BMC (subreaper -> ipmi_sim)
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  set +e
  local f p i
  [ -n "${BGPID:-}" ] && kill "$BGPID" 2>/dev/null
  for p in "${SIMS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${SIMS[@]}"; do wait "$p" 2>/dev/null; done
  for ((i=0; i<NVMS; i++)); do
    f=$W/bmc/vm$i/chassis/pid
    [ -s "$f" ] && p=$(cat "$f" 2>/dev/null) && [ "$p" -gt 1 ] 2>/dev/null && kill -TERM -- "-$p" 2>/dev/null
    f=$W/run/vm$i.pid
    [ -s "$f" ] && p=$(cat "$f" 2>/dev/null) && [ "$(ps -o comm= -p "$p" 2>/dev/null)" = qemu-system-x86 ] && kill "$p"
  done
  [ -n "${UPG:-}" ] && PIDS+=("$UPG")
  net_down "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bgwait() { "$@" & BGPID=$!; wait "$BGPID"; }
in_ns() { ip netns exec "$NS" env "$BMC_PW_VAR=$BMC_PW" "$@"; }
slw() { in_ns timeout 120 "$SLIPWAY" --offline --state-dir "$W/state" "$@"; }

# ---------------------------------------------------------------- two builds of the test OS
for v in "$VA" "$VB"; do
  log "building the test OS $v"
  bgwait timeout 900 tests/e2e/testos/build.sh "$W/www" "$v" >"$W/logs/testos-build-$v.log" 2>&1 ||
    { tail -n 30 "$W/logs/testos-build-$v.log" >&2; die "test OS $v build failed"; }
done

# ---------------------------------------------------------------- the cluster file
write_cluster() { # VERSION
  {
    cluster_head "tests/e2e/upgrade.sh: a fleet re-imaged by \`slipway upgrade\`."
    cluster_flatcar_os "$1"
    cluster_tail
    for ((i=0; i<NVMS; i++)); do
      printf '  - mac: "%s"\n    hostname: vm%d\n    ip: %s.%d\n    roles: [%s]\n' "$(mac_of "$i")" "$i" "$SUBNET" $((11 + i)) "$(node_role "$i")"
      printf '    bmc: {driver: ipmi, address: %s, port: %d, user: %s, password_env: %s, cipher_suite: 3}\n' \
        "$SRV" $((BMC_PORT0 + i)) "$BMC_USER" "$BMC_PW_VAR"
    done
  } > "$W/cluster.yaml.new"
  mv "$W/cluster.yaml.new" "$W/cluster.yaml"
}
write_cluster "$VA"
check_cluster

net_up "$NVMS"
start_slipway "$BMC_PW_VAR=$BMC_PW"
wait_ready

# ---------------------------------------------------------------- the BMCs (as provision.sh)
cat > "$W/bmc/sim.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x03 9 8 0x9f 4753 0x0f02
mc_enable 0x20
EOF
start_bmc() { # I
  local i=$1 d=$W/bmc/vm$1
  mkdir -p "$d/state" "$d/chassis"
  cat > "$d/lan.conf" <<EOF
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
  ip netns exec "$NS" env -u SLIPWAY_CHASSIS_STATE -u SLIPWAY_CHASSIS_START \
      SLIPWAY_CHASSIS_CONF="$d/chassis.conf" VM_TIMEOUT=$((TIMEOUT + 30)) \
      python3 "$HERE/subreaper.py" ipmi_sim -n -c "$d/lan.conf" -f "$W/bmc/sim.emu" -s "$d/state" \
      </dev/null >>"$W/logs/ipmi_sim$i.out" 2>&1 &
  SIMS[$i]=$!
  local up=0 out _
  for _ in $(seq 20); do
    out=$(ip netns exec "$NS" env IPMI_PASSWORD="$BMC_PW" timeout 30 ipmitool -I lanplus -C 3 -H "$SRV" \
          -p $((BMC_PORT0 + i)) -U "$BMC_USER" -E -N 1 -R 3 chassis power status 2>&1) && { up=1; break; }
    sleep 0.5
  done
  [ "$up" = 1 ] || die "the BMC of vm$i does not answer: $out"
}
stop_bmc() { # I
  local p=${SIMS[$1]:-}
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true
  unset "SIMS[$1]"
}
for ((i=0; i<NVMS; i++)); do
  truncate -s 256M "$W/run/vm$i.disk"
  [ $((i % 2)) = 1 ] && cp /usr/share/OVMF/OVMF_VARS_4M.fd "$W/run/vm$i.vars.fd"
  start_bmc "$i"
done
log "$NVMS BMC(s) up; netns $NS"

# ---------------------------------------------------------------- install A everywhere
T0=$(now)
slw_long() { in_ns timeout --kill-after=10 "$1" "$SLIPWAY" --offline --state-dir "$W/state" "${@:2}"; }
slw_long $((TIMEOUT + 60)) provision "$W/cluster.yaml" --all --timeout "$TIMEOUT" >"$W/logs/provision.out" 2>&1 ||
  { cat "$W/logs/provision.out" >&2; die "provisioning version $VA failed"; }
T1=$(now)
log "all $NVMS on $VA in $(awk "BEGIN{printf \"%.0f\", $T1 - $T0}") s"
wait_off() { # every VM's QEMU exited (the test OS powers off after ready)
  local _ i off
  for _ in $(seq 120); do
    off=0
    for ((i=0; i<NVMS; i++)); do
      [ "$(grep -c '^on ' "$W/run/vm$i.power" 2>/dev/null)" = "$(grep -c '^exit ' "$W/run/vm$i.power" 2>/dev/null)" ] && off=$((off + 1))
    done
    [ "$off" = "$NVMS" ] && return 0
    sleep 0.5
  done
}
wait_off

fail=0
check() { # WHAT CONDITION...: a verdict line
  local what=$1; shift
  if "$@"; then printf 'PASS  %s\n' "$what"; else printf 'FAIL  %s\n' "$what"; fail=1; fi
}
slw upgrade "$W/cluster.yaml" --dry-run >"$W/logs/dry-run-A.out" 2>&1 || true
check "before the change: nothing to re-image ($(grep -c 'up to date' "$W/logs/dry-run-A.out") up to date)" \
  test "$(grep -c 'up to date' "$W/logs/dry-run-A.out")" = "$NVMS"

# ---------------------------------------------------------------- the file says B
write_cluster "$VB"
kill -HUP "$SLIPWAY_PID"
for _ in $(seq 100); do
  slw upgrade "$W/cluster.yaml" --dry-run >"$W/logs/dry-run-default.out" 2>&1 && break
  sleep 0.3
done
check "dry run without --include-init-node: vm0 (kubeadm init node) left alone" \
  grep -q "vm0 .*but it is the \`kubeadm init\` node" "$W/logs/dry-run-default.out"
# (vm0 runs no kubeadm here: the test OS only reports.)
slw upgrade "$W/cluster.yaml" --dry-run --include-init-node --max-unavailable "$MAXU" >"$W/logs/dry-run-B.out" 2>&1 || true
cat "$W/logs/dry-run-B.out" | sed 's/^/  dry-run| /' >&2
check "dry run: $NVMS nodes os $VA -> $VB" test "$(grep -c "os $VA -> $VB" "$W/logs/dry-run-B.out")" = "$NVMS"
check "dry run: vm0 (control plane) alone in wave 1" grep -qzP "wave 1:\n +vm0 +control-plane" "$W/logs/dry-run-B.out"
WAVES=$(( 1 + (NVMS - 1 + MAXU - 1) / MAXU ))
check "dry run: $WAVES waves (vm0 alone, then workers $MAXU at a time)" test "$(grep -c '^  wave ' "$W/logs/dry-run-B.out")" = "$WAVES"
check "dry run changed nothing (no plan stored)" test ! -e "$W/state/upgrade/e2e.json"

# ---------------------------------------------------------------- the rollout
cat > "$W/run/hook" <<EOF
#!/bin/sh
echo "\$1 \$(date +%s.%N) node=\$SLIPWAY_NODE ip=\$SLIPWAY_NODE_IP role=\$SLIPWAY_ROLE arg=\$2" >> "$W/logs/hooks.log"
EOF
chmod +x "$W/run/hook"
for ((i=0; i<NVMS; i++)); do wc -l < "$W/bmc/vm$i/chassis/log" > "$W/run/vm$i.log0"; done
generation() { # I: vmI's install generation now
  slw status "$W/cluster.yaml" --json > "$W/run/gen.json" 2>/dev/null || { echo '?'; return; }
  python3 -c 'import json,sys; print(next(m["generation"] for m in json.load(open(sys.argv[1]))["machines"] if m["hostname"]==sys.argv[2]))' "$W/run/gen.json" "vm$1"
}
RUNS=0
upgrade() { # run `slipway upgrade` in the background: UPG
  RUNS=$((RUNS + 1))
  ( in_ns timeout --kill-after=10 $((TIMEOUT * NVMS + 120)) "$SLIPWAY" --offline --state-dir "$W/state" \
      upgrade "$W/cluster.yaml" --max-unavailable "$MAXU" --include-init-node --timeout "$TIMEOUT" \
      --pre-hook "$W/run/hook pre" --post-hook "$W/run/hook post" --hook-timeout 60 \
      >"$W/logs/upgrade$RUNS.out" 2>&1 </dev/null
  ) &
  UPG=$!
}
T2=$(now)
upgrade
if [ "${KILL:-0}" = 1 ]; then
  for _ in $(seq 3000); do grep -q '^vm1 .*installing' "$W/logs/upgrade$RUNS.out" && break; sleep 0.1; done
  # The `slipway upgrade` process itself (the one in the namespace whose command line
  # says upgrade), then serve.
  for p in $(ip netns pids "$NS"); do
    [ "$(ps -o comm= -p "$p" 2>/dev/null)" = slipway ] && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' upgrade ' && kill -9 "$p"
  done
  kill -9 "$SLIPWAY_PID"
  wait "$UPG" 2>/dev/null || true
  log "SIGKILLed slipway upgrade and slipway serve while vm1 installs"
  g1=$(cat "$W/state/upgrade/e2e.json" | python3 -c 'import json,sys; print([s["phase"] for s in json.load(sys.stdin)["steps"] if s["hostname"]=="vm1"])')
  log "vm1 in the stored plan: $g1"
  start_slipway "$BMC_PW_VAR=$BMC_PW"
  for _ in $(seq 300); do [ "$(grep -c '^ready' "$W/logs/slipway.out")" -ge 2 ] && break; sleep 0.1; done
  upgrade
fi
if [ -n "${FAIL:-}" ]; then
  stop_bmc "$FAIL"
  log "vm$FAIL's BMC is gone"
  set +e; wait "$UPG"; urc=$?; set -e
  check "with vm$FAIL's BMC gone the rollout halts (exit $urc)" test "$urc" = 1
  check "it says HALTED naming vm$FAIL" grep -q "HALTED: vm$FAIL" "$W/logs/upgrade$RUNS.out"
  for ((i=FAIL+1; i<NVMS; i++)); do
    sets=$(tail -n "+$(( $(cat "$W/run/vm$i.log0") + 1 ))" "$W/bmc/vm$i/chassis/log" | grep -c 'set ' || true)
    check "vm$i after the halt: untouched (generation $(generation "$i"), $sets BMC set calls, no hook)" \
      eval "[ $sets = 0 ] && [ $(generation "$i") = 1 ] && ! grep -q 'node=vm$i ' '$W/logs/hooks.log'"
  done
  start_bmc "$FAIL"
  log "vm$FAIL's BMC is back; re-running"
  upgrade
fi
set +e; wait "$UPG"; URC=$?; set -e
UPG=
T3=$(now)
log "upgrade exited $URC after $(awk "BEGIN{printf \"%.0f\", $T3 - $T2}") s ($RUNS run(s))"
wait_off
[ "$RUNS" = 1 ] || check "the last run resumed the stored plan" grep -q '^resuming the rollout' "$W/logs/upgrade$RUNS.out"

# ---------------------------------------------------------------- verdict
check "slipway upgrade exited 0" test "$URC" = 0
check "it reports all $NVMS re-imaged" grep -q "^re-imaged $NVMS node(s) in" "$W/logs/upgrade$RUNS.out"
slw status "$W/cluster.yaml" --json > "$W/logs/status.json"
for ((i=0; i<NVMS; i++)); do
  slw events "$W/cluster.yaml" "vm$i" > "$W/logs/vm$i.events" 2>/dev/null || true
  read -r state os gen < <(python3 -c '
import json,sys
m=next(m for m in json.load(open(sys.argv[1]))["machines"] if m["hostname"]==sys.argv[2])
print(m["state"], (m.get("installed") or {}).get("os_version","none"), m["generation"])' "$W/logs/status.json" "vm$i")
  want_gen=2; [ -n "${FAIL:-}" ] && [ "$i" = "$FAIL" ] && want_gen=3
  last=$(grep 'E2E: INSTALLED init started' "$W/logs/vm$i.serial" | tail -n 1 | grep -o 'version=[^ ]*' || true)
  check "vm$i: $state, installed $os, generation $gen (want $want_gen), console $last" \
    test "$state $os $gen $last" = "ready $VB $want_gen version=$VB"
done
# Down windows, from the events: a re-arm (`reinstall`) until the next `ready`.
python3 - "$W/logs" "$NVMS" "$T2" > "$W/logs/windows.txt" <<'PY'
import sys, re
logs, n, t2 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
wins = []
for i in range(n):
    start = None
    for line in open(f"{logs}/vm{i}.events"):
        f = line.split()
        at = int(f[0])
        if at < int(t2):
            continue
        if "reinstall" in line and start is None:
            start = at
        if f[4] == "ready" and f[2] != "ready" and start is not None:
            wins.append((start, at, f"vm{i}"))
            start = None
    if start is not None:
        wins.append((start, 1 << 62, f"vm{i}"))
wins.sort()
most, cp_with_others = 0, False
for a in wins:
    down = [b for b in wins if b[0] <= a[0] < b[1]]
    most = max(most, len(down))
    if len(down) > 1 and any(b[2] == "vm0" for b in down):
        cp_with_others = True
for a, b, h in wins:
    print(f"{h} down {a} -> {b} ({b - a} s)")
print(f"control plane down with another: {cp_with_others}")
print(f"most down at once: {most}")
PY
cat "$W/logs/windows.txt" >&2
WANT_DOWN=$(( MAXU < NVMS - 1 ? MAXU : NVMS - 1 ))
check "at most $MAXU down at once, and $WANT_DOWN at some point ($(tail -n 1 "$W/logs/windows.txt"))" \
  grep -qx "most down at once: $WANT_DOWN" "$W/logs/windows.txt"
check "the control plane never down with another node" grep -qx 'control plane down with another: False' "$W/logs/windows.txt"
order=$(awk '{print $1":"$3}' "$W/logs/hooks.log" | sed 's/node=//' | paste -sd' ')
want=""; for ((i=0; i<NVMS; i++)); do want+="pre:vm$i post:vm$i "; done
if [ -n "${FAIL:-}" ]; then want=""; for ((i=0; i<NVMS; i++)); do want+="pre:vm$i "; [ "$i" = "$FAIL" ] && want+="pre:vm$i "; want+="post:vm$i "; done; fi
[ "${KILL:-0}" = 1 ] || [ "$MAXU" != 1 ] || check "hooks in order: $order" test "$order" = "${want% }"
check "hooks got the node's address and role" grep -q "node=vm0 ip=$SUBNET.11 role=control-plane arg=vm0" "$W/logs/hooks.log"

[ "$fail" = 0 ] || { log "slipway log tail:"; tail -n 30 "$W/logs/slipway.log" >&2; tail -n 40 "$W/logs/upgrade$RUNS.out" >&2; }
printf 'TOTAL: %d VM(s) re-imaged %s -> %s (--max-unavailable %s) %s: provision %.0fs, upgrade %.0fs (%d run(s), exit %s), whole test %.0fs\n' \
  "$NVMS" "$VA" "$VB" "$MAXU" "$([ $fail = 0 ] && echo PASS || echo FAIL)" "$(awk "BEGIN{print $T1 - $T0}")" \
  "$(awk "BEGIN{print $T3 - $T2}")" "$RUNS" "$URC" "$(awk "BEGIN{print $(now) - $TSTART}")"
exit $fail
