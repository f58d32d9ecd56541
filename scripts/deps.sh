#!/usr/bin/env bash
# Sourced by scripts/test and scripts/demo: installs (apt-get, Debian 12) the system
# packages slipway's tests and demo use, without starting any service they ship.

# System packages the tests need, as "command:package".
# An absolute path stands for a file the package ships (boot binaries are not commands).
# The export tests run each program's own config check; unshare and ip make the network
# namespaces that kea's and nginx's checks need.
NEEDED=(
  dnsmasq:dnsmasq-base
  dhcpd:isc-dhcp-server
  kea-dhcp4:kea-dhcp4-server
  nginx:nginx
  unshare:util-linux
  ip:iproute2
  /usr/lib/ipxe/undionly.kpxe:ipxe
  /usr/lib/PXELINUX/pxelinux.0:pxelinux
  /usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common
  # Rendering: cloud-configs checked by cloud-init's own schema, the PKI by openssl.
  cloud-init:cloud-init
  openssl:openssl
  # HTTP service and DHCP server tests: real clients in network namespaces.
  curl:curl
  busybox:busybox-static
  dhclient:isc-dhcp-client
  perfdhcp:kea-admin
  dig:bind9-dnsutils
  python3:python3
  # Real boots: QEMU VMs (SeaBIOS + iPXE ROM, OVMF) PXE-booting through slipway.
  qemu-system-x86_64:qemu-system-x86
  /usr/share/OVMF/OVMF_CODE_4M.fd:ovmf
  /usr/lib/ipxe/qemu/pxe-virtio.rom:ipxe-qemu
  tftp:tftp-hpa
  atftp:atftp
  nft:nftables
  # The Flatcar-shaped test OS (tests/e2e/testos): a hybrid BIOS/UEFI disk image.
  mcopy:mtools
  mkfs.fat:dosfstools
  syslinux:syslinux
  /usr/lib/syslinux/mbr/gptmbr.bin:syslinux-common
  grub-mkstandalone:grub-common
  /usr/lib/grub/x86_64-efi/linux.mod:grub-efi-amd64-bin
  sfdisk:fdisk
  bzip2:bzip2
  # The mirror tests: an iPXE package built by dpkg-deb, the real-init e2e's stand-in
  # vendor upstream signed by gpg.
  dpkg-deb:dpkg
  gpg:gpg
  # BMCs: OpenIPMI's ipmi_sim with ipmitool as the reference client; sushy-tools'
  # Redfish emulator (PyPI, in a venv made by the BMC tests' install-sushy.sh).
  ipmi_sim:openipmi
  ipmitool:ipmitool
  /usr/share/doc/python3-venv:python3-venv
  # Container images: a real registry (distribution v2) as the upstream, skopeo as
  # the client that fills it and pulls back from slipway, containerd's ctr as a node.
  docker-registry:docker-registry
  skopeo:skopeo
  ctr:containerd
)
missing=()
for spec in "${NEEDED[@]}"; do
  need=${spec%%:*}
  if [[ $need == /* ]]; then [ -e "$need" ]; else command -v "$need" >/dev/null 2>&1; fi ||
    missing+=("${spec#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: ${missing[*]} (run as root, or apt-get install them)"; exit 1
  fi
  log "installing: ${missing[*]}"
  # isc-dhcp-server, kea-dhcp4-server and nginx start their service when installed: a DHCP
  # server must not start on this machine's network. policy-rc.d exiting 101 forbids it
  # for the duration (an existing policy-rc.d is set aside and put back).
  policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] && mv "$policy" "$policy.slipway-saved"
  printf '#!/bin/sh\n# scripts/test: start no service while installing\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  restore_policy() {
    rm -f "$policy"
    if [ -e "$policy.slipway-saved" ]; then mv "$policy.slipway-saved" "$policy"; fi
  }
  if ! { apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    restore_policy; log "apt-get failed"; exit 1
  fi
  restore_policy
  # Nor at the next boot: disable the services of the packages installed just now.
  if command -v systemctl >/dev/null 2>&1; then
    for unit in isc-dhcp-server:isc-dhcp-server isc-dhcp-server:isc-dhcp-server6 \
                kea-dhcp4-server:kea-dhcp4-server nginx:nginx \
                docker-registry:docker-registry containerd:containerd; do
      if [[ " ${missing[*]} " == *" ${unit%%:*} "* ]]; then
        systemctl disable --quiet "${unit#*:}" >/dev/null 2>&1 || true
      fi
    done
  fi
fi
# The Redfish emulator (sushy-tools, pinned) in its own venv; quick when already there.
crates/bmc/tests/support/redfish/install-sushy.sh >/dev/null || { log "installing sushy-tools failed"; exit 1; }
# Kubernetes' own schemas (kubernetes-validate, pinned) for the rendered manifests.
crates/render/tests/support/install-kubernetes-validate.sh >/dev/null || { log "installing kubernetes-validate failed"; exit 1; }
