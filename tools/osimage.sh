#!/bin/bash
# The vac OS test image: a real Debian 12 (bookworm) with systemd and cloud-init, built from
# the Debian package registry with mmdebstrap (root; Debian host). tools/testenv.sh install
# runs it; see tools/osimage/README.md for what the image contains and why.
#   install DIR   build DIR/debian12.qcow2 (BIOS-bootable disk for vm-raw machinetypes) and
#                 DIR/debian12-rootfs.tar (the same tree), import the tar as the podman image
#                 localhost/vac-debian12:STAMP, write DIR/debian12.json. Idempotent and cached:
#                 rebuilt only when the recipe (see recipe_stamp) changes.
#   stamp         print the recipe hash (the cache key and the podman tag)
# Everything is built in DIR/build.* and moved into place at the end, under $TESTENV_DIR/lock
# (tests may be booting the previous image), so a failed or interrupted build leaves the
# previous image in place.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/osimage
TESTENV_DIR=${TESTENV_DIR:-/var/tmp/vac-test-env}
SUITE=bookworm
NAME=debian12
DISK_BYTES=$((2 * 1024 * 1024 * 1024))   # virtual size of the disk (the guest's root fs)
PART_START=2048                          # first sector of the root partition (1 MiB)
FS_LABEL=vacroot
FS_UUID=7ac0de12-0b0e-4c3a-9d5e-000000000001   # fixed: the image is reproducible by recipe
PODMAN_REPO=localhost/vac-debian12
CMDLINE_EXTRA="console=ttyS0,115200 quiet net.ifnames=0 fsck.mode=skip mitigations=off init_on_alloc=0 transparent_hugepage=never audit=0 cryptomgr.notests panic=-1"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

t() { echo "[osimage $(date +%T.%N | cut -c1-12)] $*"; }
die() { echo "osimage: $*" >&2; exit 1; }

recipe_stamp() {
  # what the image is made of: the recipe files (not the README) and this script from its
  # settings to make_disk, without comments; independent of where the repository lives
  { (cd "$SRC" && sha256sum $(ls | grep -v '\.md$'))
    sed -n '/^SUITE=/,/^podman_import()/p' "${BASH_SOURCE[0]}" | sed '/^ *#/d'; } |
    sha256sum | cut -c1-16
}

packages() { grep -v '^#' "$SRC/packages.txt" | grep . | paste -sd, -; }

build_rootfs() {
  # $1: empty target directory. initramfs-tools is configured (MODULES=list + our modules)
  # before the kernel package is installed, so update-initramfs runs once, small.
  local root=$1
  mmdebstrap --variant=minbase --mode=root --format=directory \
    --include="$(packages)" \
    --dpkgopt=force-unsafe-io \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" \"\$1/usr/share/initramfs-tools/modules.d\" &&
      echo MODULES=list > \"\$1/etc/initramfs-tools/conf.d/vac.conf\" &&
      cp '$SRC/initramfs-modules' \"\$1/usr/share/initramfs-tools/modules.d/vac\"" \
    "$SUITE" "$root" </dev/null
}

kernel_version() { ls "$1/usr/lib/modules" | head -n 1; }

customise() {
  # $1: the root tree. Host-independent identity, boot, cloud-init and systemd tuning.
  local root=$1 kver unit
  kver=$(kernel_version "$root")
  [ -f "$root/boot/vmlinuz-$kver" ] && [ -f "$root/boot/initrd.img-$kver" ] ||
    die "no kernel/initrd for $kver in the tree"
  # mmdebstrap copies the build host's name and resolver: neither belongs in the image
  echo debian > "$root/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  rm -f "$root/etc/resolv.conf"
  : > "$root/etc/machine-id"           # empty: each boot (instance) gets its own
  echo "LABEL=$FS_LABEL / ext4 rw,noatime,errors=remount-ro 0 0" > "$root/etc/fstab"
  install -D -m 0644 "$SRC/90-vac.cfg" "$root/etc/cloud/cloud.cfg.d/90-vac.cfg"
  install -D -m 0644 "$SRC/wait-online.conf" \
    "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/vac.conf"
  install -D -m 0644 "$SRC/journald.conf" "$root/etc/systemd/journald.conf.d/vac.conf"
  install -D -m 0644 "$SRC/20-vac-dhcp.network" "$root/etc/systemd/network/20-vac-dhcp.network"
  install -D -m 0644 "$SRC/modprobe-blacklist.conf" "$root/etc/modprobe.d/vac.conf"
  systemctl --root="$root" --quiet enable systemd-networkd.service
  # cloud-init always runs here: no ds-identify (its blkid/DMI probing costs seconds under
  # TCG); cloud-init.target wanted as its generator would do, datasource_list from 90-vac.cfg
  mkdir -p "$root/etc/systemd/system-generators" "$root/etc/systemd/system/multi-user.target.wants"
  ln -sfn /dev/null "$root/etc/systemd/system-generators/cloud-init-generator"
  ln -sfn /lib/systemd/system/cloud-init.target \
    "$root/etc/systemd/system/multi-user.target.wants/cloud-init.target"
  while read -r unit; do
    case "$unit" in ''|'#'*) continue ;; esac
    systemctl --root="$root" --quiet mask "$unit"
  done < "$SRC/masked-units.txt"
  mkdir -p "$root/boot/extlinux"
  sed -e "s|@KERNEL@|/boot/vmlinuz-$kver|" -e "s|@INITRD@|/boot/initrd.img-$kver|" \
      -e "s|@CMDLINE@|root=LABEL=$FS_LABEL rw $CMDLINE_EXTRA|" \
      "$SRC/extlinux.conf" > "$root/boot/extlinux/extlinux.conf"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
    "$root"/var/log/*.log "$root"/var/log/apt/*
  # ConditionNeedsUpdate= units (ldconfig, hwdb, ...) have nothing to do on first boot
  touch "$root/etc/.updated" "$root/var/.updated"
}

make_disk() {
  # $1 root tree, $2 output raw image: MBR (syslinux mbr.bin) + one bootable Linux
  # partition at 1 MiB holding ext4 made from the tree by mke2fs -d; extlinux installed
  # through a loop device at the partition's offset (no partition scanning or
  # device-mapper needed).
  local root=$1 img=$2 off=$((PART_START * 512)) part_bytes loop mnt
  part_bytes=$((DISK_BYTES - off))
  rm -f "$img"; truncate -s "$DISK_BYTES" "$img"
  printf 'label: dos\nstart=%d, type=83, bootable\n' "$PART_START" | sfdisk -q "$img"
  mke2fs -q -F -t ext4 -O ^64bit -L "$FS_LABEL" -U "$FS_UUID" -E "offset=$off" -d "$root" \
    "$img" "$((part_bytes / 1024))k"
  mnt=$(dirname "$img")/mnt; mkdir -p "$mnt"
  loop=$(losetup --find --show --offset "$off" --sizelimit "$part_bytes" "$img")
  if ! mount -t ext4 "$loop" "$mnt"; then losetup -d "$loop"; die "cannot mount $loop"; fi
  local rc=0
  extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || rc=$?
  umount "$mnt"; losetup -d "$loop"; rmdir "$mnt"
  [ $rc = 0 ] || die "extlinux --install failed ($rc)"
  dd if=/usr/lib/EXTLINUX/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
}

podman_import() {
  # $1 tar, $2 tag: import unless the tag is already there; drop older tags of the repo
  local tar=$1 tag=$2 old
  if ! podman image exists "$PODMAN_REPO:$tag"; then
    podman import --quiet "$tar" "$PODMAN_REPO:$tag" >/dev/null
  fi
  for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$PODMAN_REPO" 2>/dev/null); do
    [ "$old" = "$PODMAN_REPO:$tag" ] || podman rmi --force "$old" >/dev/null 2>&1 || true
  done
}

write_json() {
  # $1 dir, $2 stamp, $3 kernel version, $4 build seconds
  python3 - "$1/$NAME.json" <<EOF
import json, os, sys
info = {
    "name": "$NAME", "suite": "$SUITE", "stamp": "$2", "kernel_version": "$3",
    "disk_qcow2": "$1/$NAME.qcow2", "rootfs_tar": "$1/$NAME-rootfs.tar",
    "podman_image": "$PODMAN_REPO:$2", "build_seconds": $4,
    "kernel_cmdline": "root=LABEL=$FS_LABEL rw $CMDLINE_EXTRA",
    "disk_bytes": $DISK_BYTES,
}
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, sys.argv[1])
EOF
}

cmd_install() {
  local dir=$1 stamp w start kver secs
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (tools/install-deps.sh)"
  mkdir -p "$dir"
  exec 7>"$dir/.build.lock"; flock 7          # one build at a time on this host
  stamp=$(recipe_stamp)
  if [ "$(cat "$dir/$NAME.stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$dir/$NAME.qcow2" ] &&
     [ -f "$dir/$NAME-rootfs.tar" ] && [ -f "$dir/$NAME.json" ]; then
    command -v podman >/dev/null && podman_import "$dir/$NAME-rootfs.tar" "$stamp"
    t "cached: $dir/$NAME.qcow2 (recipe $stamp)"
    return 0
  fi
  start=$(date +%s.%N)
  w=$dir/build.$stamp; rm -rf "$dir"/build.*; mkdir -p "$w"
  t "mmdebstrap $SUITE ($(packages))"
  build_rootfs "$w/rootfs"
  kver=$(kernel_version "$w/rootfs")
  t "customise (kernel $kver)"
  customise "$w/rootfs"
  t "root filesystem tar"
  tar --numeric-owner --xattrs -C "$w/rootfs" -cf "$w/$NAME-rootfs.tar" .
  t "disk image (ext4 + extlinux)"
  make_disk "$w/rootfs" "$w/$NAME.raw"
  qemu-img convert -f raw -O qcow2 "$w/$NAME.raw" "$w/$NAME.qcow2"
  rm -rf "$w/rootfs" "$w/$NAME.raw"
  secs=$(python3 -c "import time; print(round(time.time() - $start, 1))")
  # tests may be overlaying the previous image: swap under the test environment lock
  exec 9>"$TESTENV_DIR/lock"; flock -w "${TESTENV_LOCK_WAIT:-1800}" 9 || die "lock busy"
  rm -f "$dir/$NAME.stamp"
  mv -f "$w/$NAME.qcow2" "$w/$NAME-rootfs.tar" "$dir/"
  write_json "$dir" "$stamp" "$kver" "$secs"
  echo "$stamp" > "$dir/$NAME.stamp"
  exec 9>&-
  rm -rf "$w"
  if command -v podman >/dev/null; then
    t "podman import $PODMAN_REPO:$stamp"
    podman_import "$dir/$NAME-rootfs.tar" "$stamp"
  fi
  t "built $dir/$NAME.qcow2 in ${secs} s ($(du -h "$dir/$NAME.qcow2" | cut -f1) on disk)"
}

main() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  case "${1:-}" in
    install) [ -n "${2:-}" ] || die "usage: $0 install DIR"; cmd_install "$2" ;;
    stamp) recipe_stamp ;;
    *) echo "usage: $0 install DIR | stamp" >&2; exit 2 ;;
  esac
}

# sourced (to try one step by hand), only the functions are defined
[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
