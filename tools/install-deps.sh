#!/bin/bash
# Install every system package vac needs to build, test and run (idempotent; root).
# Debian: apt-get, --no-install-recommends, `apt-get update` only when something is missing.
# Never libvirt-daemon-system: it drags in systemd and ~200 packages; tools/testenv.sh starts
# libvirtd by hand instead (see docs FEASIBILITY.md).
set -euo pipefail

DEB_PKGS=(
  python3-venv python3-dev gcc libc6-dev pkg-config libvirt-dev  # venv + libvirt-python build,
                                                             # static vac-udp for the test guest
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients  # libvirtd (monolithic) + virsh
  libvirt-daemon-config-nwfilter                             # clean-traffic anti-spoofing filter
  qemu-system-x86 qemu-utils                                 # TCG/KVM guests, qemu-img overlays
  dnsmasq-base iptables iproute2                             # vac NAT network, netns
  lvm2 psmisc                                                # logical volumes, fuser
  genisoimage xorriso busybox-static isolinux syslinux-common lz4  # context ISO + test guest
  rpm mandoc puppet cloud-init                               # packaging, man pages, puppet module
  rpmlint python3-packaging puppet-lint                      # rpm checks + dep generator, puppet lint
  prometheus                                                 # server + promtool for the metrics tests
  mmdebstrap extlinux fdisk e2fsprogs                        # the Debian OS test image (osimage.sh)
  podman runc containernetworking-plugins                    # docker machine model (rootful; runc: cgroup v1 hosts)
)
# EL9 names; some live in EPEL (mandoc, busybox) and puppet comes from Puppet's own repo.
EL_PKGS=(
  python3-devel gcc pkgconf-pkg-config libvirt-devel
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-client libvirt-daemon-config-nwfilter
  qemu-kvm qemu-img dnsmasq iptables-nft iproute lvm2 psmisc
  xorriso busybox syslinux lz4 rpm-build rpmlint python3-rpm-macros mandoc cloud-init
  python3-prometheus_client   # EPEL 9; EL9 has no Prometheus server package for the tests
  podman runc                 # docker machine model (rootful)
)

if [ "$(id -u)" != 0 ]; then echo "install-deps.sh: must run as root" >&2; exit 1; fi

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  missing=()
  for p in "${DEB_PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif command -v dnf >/dev/null 2>&1; then
  missing=()
  for p in "${EL_PKGS[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    dnf install -y -q --setopt=skip_missing_names_on_install=True "${missing[@]}"
  fi
else
  echo "install-deps.sh: neither apt-get nor dnf found" >&2
  exit 1
fi
