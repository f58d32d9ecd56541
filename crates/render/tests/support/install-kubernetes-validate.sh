#!/usr/bin/env bash
# Installs kubernetes-validate (PyPI: Kubernetes' own OpenAPI schemas, every version,
# offline) into a Python venv for the render tests that check slipway's manifests
# (crates/render/tests/k8s_validate.rs).
#
#   SLIPWAY_K8S_VALIDATE_VENV   the venv (default /opt/slipway-test/kubernetes-validate)
#   SLIPWAY_K8S_VALIDATE_PYTHON the Python that makes it (default /usr/bin/python3)
#
# Pinned; idempotent, and quick when already installed.
set -euo pipefail

VERSION="1.37.0"
VENV="${SLIPWAY_K8S_VALIDATE_VENV:-/opt/slipway-test/kubernetes-validate}"
PYTHON="${SLIPWAY_K8S_VALIDATE_PYTHON:-/usr/bin/python3}"
STAMP="$VENV/.slipway-kubernetes-validate-$VERSION"
if [[ -f "$STAMP" && -x "$VENV/bin/kubernetes-validate" ]]; then
    echo "kubernetes-validate $VERSION already in $VENV"
    exit 0
fi
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
mkdir -p "$(dirname "$VENV")"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV" || {
        echo "install-kubernetes-validate.sh: '$PYTHON -m venv' failed: apt-get install python3-venv" >&2
        exit 1
    }
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$VERSION"
"$VENV/bin/kubernetes-validate" --version >/dev/null
rm -f "$VENV"/.slipway-kubernetes-validate-*
touch "$STAMP"
echo "kubernetes-validate $VERSION installed in $VENV"
