#!/bin/sh
# slipway: install flatcar stable 4081.2.0 on worker2 (52:54:00:99:01:12, 10.99.0.22) to /dev/vda
set -eu
report() {
  curl -fsS -X POST 'http://10.99.0.1:8080/report/52-54-00-99-01-12/0000example0install0token0000000'/"$1" >/dev/null 2>&1 || wget -q -O /dev/null --post-data= 'http://10.99.0.1:8080/report/52-54-00-99-01-12/0000example0install0token0000000'/"$1" || true
}
trap 'status=$?; [ "$status" -eq 0 ] || report "failed?reason=exit-$status"' EXIT
report installing
config=/tmp/slipway-installed.ign
fetch() {
  curl -fsS -o "$2" "$1" 2>/dev/null || wget -q -O "$2" "$1"
}
tries=0
until fetch 'http://10.99.0.1:8080/config/52-54-00-99-01-12/installed' "$config"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 10 ]; then echo 'slipway: cannot fetch the config' >&2; exit 1; fi
  sleep 3
done
flatcar-install -d '/dev/vda' -C 'stable' -V '4081.2.0' -b 'http://10.99.0.1:8080' -i "$config"
report installed
echo 'slipway: installed, rebooting'
systemctl reboot 2>/dev/null || reboot
