#!/usr/bin/env bash
# Installs sushy-tools' Redfish emulator into a Python venv for the Redfish
# driver's tests (crates/bmc/tests/redfish.rs).
#
#   SLIPWAY_SUSHY_VENV    the venv (default /opt/slipway-test/sushy)
#   SLIPWAY_SUSHY_PYTHON  the Python that makes it (default /usr/bin/python3)
#
# Needs the Debian packages listed in PACKAGES beside this script:
#   apt-get install -y $(grep -v '^#' PACKAGES)
# Versions are pinned: sushy-tools below, its dependencies in sushy-constraints.txt.
# Idempotent, and quick when already installed.
set -euo pipefail

SUSHY_VERSION="2.2.0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$HERE/sushy-constraints.txt"
VENV="${SLIPWAY_SUSHY_VENV:-/opt/slipway-test/sushy}"
PYTHON="${SLIPWAY_SUSHY_PYTHON:-/usr/bin/python3}"

# The stamp names the version and the constraints, so a change to either reinstalls.
STAMP="$VENV/.slipway-sushy-tools-$SUSHY_VERSION-$(sha256sum "$CONSTRAINTS" | cut -c1-12)"
if [[ -f "$STAMP" && -x "$VENV/bin/sushy-emulator" ]]; then
    echo "sushy-tools $SUSHY_VERSION already in $VENV"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV" || {
        echo "install-sushy.sh: '$PYTHON -m venv' failed: apt-get install python3-venv" >&2
        exit 1
    }
fi

"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --constraint "$CONSTRAINTS" "sushy-tools==$SUSHY_VERSION"
"$VENV/bin/sushy-emulator" --help >/dev/null

rm -f "$VENV"/.slipway-sushy-tools-*
touch "$STAMP"
echo "sushy-tools $SUSHY_VERSION installed in $VENV"
