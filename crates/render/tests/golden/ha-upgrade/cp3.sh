#!/bin/bash
# slipway: Kubernetes v1.31.2 -> v1.32.0 (minor upgrade) on cp3, another control plane: kubeadm upgrade node.
# kubeadm's order: the first control plane, then the other control planes, then
# the workers; slipway runs one node at a time between its drain and uncordon hooks.
set -euo pipefail
from=v1.31.2
to=v1.32.0
image=kubernetes-v1.32.0-x86-64.raw
dir=/opt/extensions/kubernetes
done=/var/lib/slipway/kubernetes-v1.32.0.upgraded
if [ -e "$done" ]; then echo "slipway: already upgraded to $to"; exit 0; fi

# 1. The new kubeadm, kubelet and kubectl: the sysext image of $to from slipway.
mkdir -p "$dir" /etc/extensions "$(dirname "$done")"
curl -fsSL --retry 10 -o "$dir/$image.part" http://10.99.0.1:8080/extensions/kubernetes-v1.32.0-x86-64.raw
echo "3b1c3c4d56e0f0b7c0b8a4b2d3a5e2f1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5  $dir/$image.part" | sha256sum --check --quiet -
mv -f "$dir/$image.part" "$dir/$image"
ln -sf "$dir/$image" /etc/extensions/kubernetes.raw
systemd-sysext refresh
got=$(kubeadm version -o short)
[ "$got" = "$to" ] || { echo "slipway: kubeadm is $got after the sysext refresh, not $to" >&2; exit 1; }

# 2. kubeadm (the certificates stay slipway's: no renewal).
kubeadm upgrade node --certificate-renewal=false

# 3. The kubelet on its new binary.
systemctl daemon-reload
systemctl restart kubelet
touch "$done"
echo "slipway: $(hostname) upgraded from $from to $to"
