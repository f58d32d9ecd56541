#!/bin/sh
# chassis-control.sh: the "chassis_control" program of OpenIPMI's ipmi_sim for
# tests/e2e/provision.sh, where power on starts a QEMU machine.
#
# A copy of crates/bmc/tests/support/ipmi/chassis-control.sh (kept here so that
# this e2e test does not move with the unit tests' harness). A start command that
# has exited but was never reaped (a zombie) counts as "not running": the start
# command is orphaned as soon as this script exits, and where PID 1 does not reap
# orphans promptly (containers), the exited QEMU would otherwise stay "powered on".
# (provision.sh also runs ipmi_sim under subreaper.py, which reaps them at once.)
#
# ipmi_sim runs it (through `sh -c`, with ipmi_sim's environment) as
#
#   chassis-control.sh [DEVICE] get PARM...         prints one "PARM:VALUE" line each
#   chassis-control.sh [DEVICE] set PARM VALUE...   prints nothing on success
#   chassis-control.sh [DEVICE] check ...           exits 1 (not supported)
#
# (DEVICE is whatever follows the program in lan.conf's `chassis_control` line,
# e.g. "0x20"; it is optional here.) Parameters:
#
#   power     get: 1 on, 0 off.   set 1: power on; set 0: power off (hard).
#   reset     set 1: hard reset (off and on again when a start command runs).
#   shutdown  set 1: ACPI soft-off (chassis control 05h): the machine goes off.
#   boot      get/set: the boot device ipmi_sim maps from boot flags parameter 5:
#             none, pxe, default (= the hard disk, 0010b), cdrom, bios.
#   identify  set INTERVAL FORCE: recorded only.
#
# Configuration: environment variables, or a file of `NAME=value` shell lines
# named by SLIPWAY_CHASSIS_CONF (sourced; it may set any of these):
#
#   SLIPWAY_CHASSIS_STATE      directory for the state files (required):
#                                power    "1" or "0" (when no start command)
#                                boot     the last boot device set
#                                log      one line per call: "get power", "set boot pxe", ...
#                                pid      process ID of the running start command
#                                console  stdout and stderr of the start command
#   SLIPWAY_CHASSIS_START      optional command run by `sh -c` on power on, for
#                              example a qemu-system-x86_64 command line. Power is
#                              then "on" exactly while it runs; power off kills it.
#                              It sees SLIPWAY_BOOT_DEVICE (pxe, default, ...) and
#                              SLIPWAY_QEMU_BOOT (n for pxe, c otherwise) so that it
#                              can pass `-boot "$SLIPWAY_QEMU_BOOT"`.
#   SLIPWAY_CHASSIS_KILL_WAIT  seconds between SIGTERM and SIGKILL (default 5).
#   SLIPWAY_CHASSIS_SOFT       optional command for soft-off instead of SIGTERM,
#                              e.g. one that sends `system_powerdown` to QEMU's
#                              monitor.
#
# The start command runs in its own session (setsid) with its output sent to the
# console file: ipmi_sim reads this script's output through a pipe and would
# otherwise wait for the machine to exit.

set -u

if [ -n "${SLIPWAY_CHASSIS_CONF:-}" ]; then
    # shellcheck disable=SC1090
    . "$SLIPWAY_CHASSIS_CONF"
fi

state=${SLIPWAY_CHASSIS_STATE:?SLIPWAY_CHASSIS_STATE is not set}
start=${SLIPWAY_CHASSIS_START:-}
kill_wait=${SLIPWAY_CHASSIS_KILL_WAIT:-5}
soft=${SLIPWAY_CHASSIS_SOFT:-}

mkdir -p "$state"
echo "$*" >>"$state/log"

case "${1:-}" in
    get | set | check) ;;
    "") echo "no operation given"; exit 1 ;;
    *) shift ;; # the device
esac
op=${1:-}
[ $# -gt 0 ] && shift

running() {
    [ -s "$state/pid" ] || return 1
    _pid=$(cat "$state/pid")
    kill -0 "$_pid" 2>/dev/null || return 1
    # A zombie (exited, not reaped) is off. /proc/PID/stat: "PID (COMM) STATE ...".
    _st=$(sed -n 's/^.*) \([A-Za-z]\) .*$/\1/p' "/proc/$_pid/stat" 2>/dev/null)
    [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

read_file() { # FILE DEFAULT
    if [ -s "$state/$1" ]; then cat "$state/$1"; else echo "$2"; fi
}

power_get() {
    if [ -n "$start" ]; then
        if running; then echo 1; else echo 0; fi
    else
        read_file power 0
    fi
}

power_on() {
    echo 1 >"$state/power"
    [ -n "$start" ] || return 0
    running && return 0
    boot=$(read_file boot default)
    case $boot in pxe) qemu_boot=n ;; *) qemu_boot=c ;; esac
    SLIPWAY_BOOT_DEVICE=$boot SLIPWAY_QEMU_BOOT=$qemu_boot \
        setsid sh -c "$start" </dev/null >>"$state/console" 2>&1 &
    echo $! >"$state/pid"
}

power_off() { # SIGNAL-COMMAND (optional soft command)
    echo 0 >"$state/power"
    [ -n "$start" ] || return 0
    running || return 0
    pid=$(cat "$state/pid")
    if [ -n "${1:-}" ]; then
        sh -c "$1" </dev/null >>"$state/console" 2>&1
    else
        # The start command leads its own process group: signal all of it.
        kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    fi
    i=0
    while running && [ "$i" -lt "$((kill_wait * 10))" ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    rm -f "$state/pid"
}

case $op in
    get)
        for parm in "$@"; do
            case $parm in
                power) echo "power:$(power_get)" ;;
                boot) echo "boot:$(read_file boot default)" ;;
                *) echo "unknown parameter: $parm"; exit 1 ;;
            esac
        done
        ;;
    set)
        while [ $# -gt 0 ]; do
            parm=$1
            val=${2:-}
            [ $# -ge 2 ] || { echo "no value for $parm"; exit 1; }
            shift 2
            case $parm in
                power)
                    if [ "$val" = 1 ]; then power_on; else power_off; fi
                    ;;
                reset)
                    if [ "$val" = 1 ] && [ -n "$start" ] && running; then
                        power_off
                        power_on
                    fi
                    ;;
                shutdown)
                    [ "$val" = 1 ] && power_off "$soft"
                    ;;
                boot)
                    case $val in
                        none | pxe | default | cdrom | bios) echo "$val" >"$state/boot" ;;
                        *) echo "invalid boot device: $val"; exit 1 ;;
                    esac
                    ;;
                identify)
                    # INTERVAL FORCE: FORCE is one more word.
                    [ $# -gt 0 ] && shift
                    ;;
                *) echo "unknown parameter: $parm"; exit 1 ;;
            esac
        done
        ;;
    check) exit 1 ;;
    *) echo "unknown operation: $op"; exit 1 ;;
esac
exit 0
