#!/bin/bash
# The real test environment of vac (root; Debian 12): see FEASIBILITY.md for why it looks like this.
#   install  one-time, idempotent, cached: libvirt config, LVM config, podman config, guest kernel,
#            test guest ISO, and the Debian OS image (tools/osimage.sh; TESTENV_OSIMAGE=0 skips it)
#   start    (runs stop first) netns vacns + libvirtd inside it + VG on a loop device + LV shim,
#            then writes $TESTENV_DIR/env.json, which the real_env pytest fixture reads
#   stop     tears all of that down; never fails when things are absent
#   status   prints what is up
# start/stop take the same exclusive lock ($TESTENV_DIR/lock) as each integration test, so they
# wait for a running test instead of pulling the environment away under it.
set -euo pipefail

TESTENV_DIR=${TESTENV_DIR:-/var/tmp/vac-test-env}
NS=${TESTENV_NETNS:-vacns}
VG=${TESTENV_VG:-vac_volume_group}
VG_SIZE=${TESTENV_VG_SIZE:-20G}
URI=qemu:///system
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_SRC=$HERE/guest
GUEST_DIR=$TESTENV_DIR/guest
BIN=$TESTENV_DIR/bin
LOCK=$TESTENV_DIR/lock
export LVM_SUPPRESS_FD_WARNINGS=1 DEBIAN_FRONTEND=noninteractive

t() { echo "[testenv $(date +%T.%N | cut -c1-12)] $*"; }
die() { echo "testenv: $*" >&2; exit 1; }
have_dm() { grep -qw device-mapper /proc/misc 2>/dev/null || grep -qw device-mapper /proc/devices 2>/dev/null; }
virsh_q() { timeout 20 virsh -q -c "$URI" "$@"; }
lock() { mkdir -p "$TESTENV_DIR"; exec 9>"$LOCK"; flock -w "${TESTENV_LOCK_WAIT:-1800}" 9 || die "lock $LOCK busy"; }

# ---------------------------------------------------------------------------- install
install_libvirt_config() {
  # libvirtd refuses to start unless libvirt-qemu exists, even with user = "root" in qemu.conf
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
  local want='# written by vac tools/testenv.sh: no systemd/virtlogd/security driver on test hosts
user = "root"
group = "root"
stdio_handler = "file"
security_driver = "none"'
  mkdir -p /etc/libvirt
  [ "$(cat /etc/libvirt/qemu.conf 2>/dev/null)" = "$want" ] ||
    { printf '%s\n' "$want" > /etc/libvirt/qemu.conf.vac-tmp; mv -f /etc/libvirt/qemu.conf.vac-tmp /etc/libvirt/qemu.conf; }
}

install_lvm_config() {
  # Without device-mapper LVs cannot be activated: use metadata-only LVM plus the loop shim.
  # With device-mapper but no udev, LVM must make the /dev nodes itself instead of waiting.
  local f=/etc/lvm/lvmlocal.conf marker='# written by vac tools/testenv.sh' want=""
  if ! have_dm; then
    want=$(printf '%s: no device-mapper\nglobal {\n  activation = 0\n}' "$marker")
  elif [ ! -S /run/udev/control ]; then
    want=$(printf '%s: no udev\nactivation {\n  udev_sync = 0\n  udev_rules = 0\n}' "$marker")
  fi
  if [ -n "$want" ]; then
    [ "$(cat "$f" 2>/dev/null)" = "$want" ] ||
      { mkdir -p /etc/lvm; printf '%s\n' "$want" > "$f.vac-tmp"; mv -f "$f.vac-tmp" "$f"; }
  elif grep -qF "$marker" "$f" 2>/dev/null; then
    rm -f "$f"
  fi
}

install_podman_config() {
  # Rootful podman as Debian ships it fails on this kind of host (FEASIBILITY.md §8): crun
  # refuses cgroup v1/hybrid hierarchies (runc works), and podman's default ulimits (nofile
  # 1048576) exceed the host's hard limits. A containers.conf drop-in fixes both for every
  # podman user of the host (as a site would configure it); written only where needed.
  local f=/etc/containers/containers.conf.d/50-vac-testenv.conf want="" containers="" engine=""
  if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 1048576 ]; then
    containers=$'[containers]\n# podman\'s default nofile (1048576) is above this host\'s hard limit\ndefault_ulimits = []'
  fi
  if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ]; then
    engine=$'[engine]\n# cgroup v1/hybrid host: crun refuses it, runc works\nruntime = "runc"'
  fi
  if [ -n "$containers$engine" ]; then
    want=$(printf '# written by vac tools/testenv.sh\n%s\n%s' "$containers" "$engine")
    [ "$(cat "$f" 2>/dev/null)" = "$want" ] ||
      { mkdir -p "${f%/*}"; printf '%s\n' "$want" > "$f.vac-tmp"; mv -f "$f.vac-tmp" "$f"; }
  else
    rm -f "$f"
  fi
}

kernel_package() {
  # linux-image-cloud-amd64 is a metapackage: resolve the versioned image it depends on now
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}

fetch_kernel_deb() {
  # print the path of $1's .deb: the cache, apt's archive, or apt-get download (once more after
  # an apt-get update, for lists older than the mirror)
  local pkg=$1 cache=$2 deb
  deb=$(ls "$cache/${pkg}_"*.deb /var/cache/apt/archives/"${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    t "downloading $pkg" >&2
    (cd "$cache" && apt-get download -qq "$pkg" 2>/dev/null) ||
      { apt-get update -qq && cd "$cache" && apt-get download -qq "$pkg" 2>/dev/null; } ||
      die "apt-get download $pkg failed"
    deb=$(ls "$cache/${pkg}_"*.deb | head -n 1)
  fi
  echo "$deb"
}

install_kernel() {
  # sets KDIR (unpacked kernel root) and KVER
  command -v apt-get >/dev/null || die "the guest kernel comes from Debian (apt-get); not available here"
  local pkg deb cache=$TESTENV_DIR/cache
  pkg=$(kernel_package)
  if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(kernel_package); fi
  [ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"
  KDIR=$cache/$pkg
  if [ ! -f "$KDIR/.done" ]; then
    mkdir -p "$cache"; rm -rf "$KDIR" "$KDIR.tmp"
    deb=$(fetch_kernel_deb "$pkg" "$cache")
    dpkg-deb -x "$deb" "$KDIR.tmp"
    mv "$KDIR.tmp" "$KDIR"; touch "$KDIR/.done"
    # older kernels (the metapackage moved on) are not needed any more
    find "$cache" -mindepth 1 -maxdepth 1 ! -name "${pkg}" ! -name "${pkg}_*" -exec rm -rf {} +
  fi
  KVER=$(ls "$KDIR/lib/modules" | head -n 1)
  [ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "no vmlinuz in $KDIR"
}

module_order() {
  # print the modules of tools/guest/modules.txt with their dependencies first, each once
  local mdir=$1 m
  declare -gA MOD_FILE=() MOD_SEEN=()
  while IFS= read -r f; do m=${f##*/}; m=${m%.ko}; MOD_FILE[${m//-/_}]=$f; done \
    < <(find "$mdir" -name '*.ko')
  mod_visit() {
    local name=${1//-/_} dep deps
    [ -n "${MOD_SEEN[$name]:-}" ] && return 0
    MOD_SEEN[$name]=1
    [ -n "${MOD_FILE[$name]:-}" ] || die "guest module $name not in $KVER"
    deps=$(tr '\0' '\n' < "${MOD_FILE[$name]}" | sed -n 's/^depends=//p' | head -n 1)
    for dep in ${deps//,/ }; do mod_visit "$dep"; done
    echo "$name"
  }
  while read -r m; do
    case "$m" in ''|'#'*) continue ;; esac
    mod_visit "$m"
  done < "$GUEST_SRC/modules.txt"
}

guest_stamp() {
  # everything the guest build reads (not the README), independent of where the repo lives
  { echo "kernel $KVER xorriso=$(command -v xorriso || true)"; busybox | head -n 1
    (cd "$GUEST_SRC" && sha256sum $(ls | grep -v '\.md$')); sha256sum < /usr/lib/ISOLINUX/isolinux.bin
    sed -n '/^build_guest()/,/^}/p' "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16
}

build_guest() {
  local w=$GUEST_DIR/build m
  rm -rf "$w"; mkdir -p "$w/initrd/bin" "$w/initrd/lib/modules" "$w/initrd/etc" \
    "$w/initrd/usr/local/bin" "$w/iso/isolinux" "$w/iso/boot"
  cp /bin/busybox "$w/initrd/bin/busybox"
  install -m 0755 "$GUEST_SRC/init" "$w/initrd/init"
  install -m 0755 "$GUEST_SRC/udhcpc.sh" "$w/initrd/etc/udhcpc.sh"
  install -m 0755 "$GUEST_SRC/vac-put" "$GUEST_SRC/wget" "$w/initrd/usr/local/bin/"
  # busybox cannot send a chosen UDP payload (VacQuery): a tiny static helper can
  gcc -static -Os -s -Wall -o "$w/initrd/usr/local/bin/vac-udp" "$GUEST_SRC/vac-udp.c"
  echo "127.0.0.1 localhost" > "$w/initrd/etc/hosts"
  module_order "$KDIR/lib/modules/$KVER" > "$w/initrd/lib/modules/load.order"
  while read -r m; do cp "${MOD_FILE[$m]}" "$w/initrd/lib/modules/$m.ko"; done \
    < "$w/initrd/lib/modules/load.order"
  (cd "$w/initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > "$w/initrd.gz"
  cp "$KDIR/boot/vmlinuz-$KVER" "$w/vmlinuz"
  cp "$w/vmlinuz" "$w/iso/boot/vmlinuz"; cp "$w/initrd.gz" "$w/iso/boot/initrd.gz"
  cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$w/iso/isolinux/"
  cp "$GUEST_SRC/isolinux.cfg" "$w/iso/isolinux/isolinux.cfg"
  genisoimage -quiet -o "$w/vac-test-guest.iso" -V VACTEST -R -J \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
    -boot-info-table "$w/iso"
  rm -f "$GUEST_DIR/vac-test-guest.img" "$GUEST_DIR/vac-test-guest.qcow2"
  if command -v xorriso >/dev/null; then
    # the same guest as a BIOS-bootable disk image (isohybrid MBR) for vm-raw machinetypes
    xorriso -as mkisofs -quiet -o "$w/vac-test-guest.img" -V VACTEST -R -J \
      -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
      -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
      -boot-info-table "$w/iso" 2>/dev/null
    qemu-img convert -f raw -O qcow2 "$w/vac-test-guest.img" "$w/vac-test-guest.qcow2"
    mv "$w/vac-test-guest.img" "$w/vac-test-guest.qcow2" "$GUEST_DIR/"
  fi
  mv "$w/vmlinuz" "$w/initrd.gz" "$w/vac-test-guest.iso" "$GUEST_DIR/"
  rm -rf "$w"
}

cmd_install() {
  local stamp
  mkdir -p "$TESTENV_DIR"
  install_libvirt_config
  install_lvm_config
  install_kernel
  stamp=$(guest_stamp)
  if [ "$(cat "$GUEST_DIR/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$GUEST_DIR/vac-test-guest.iso" ]; then
    lock  # running tests may be booting (or overlaying) the current guest files
    t "building test guest (kernel $KVER)"
    mkdir -p "$GUEST_DIR"; rm -f "$GUEST_DIR/stamp"
    build_guest
    echo "$stamp" > "$GUEST_DIR/stamp"
    exec 9>&-   # osimage.sh takes the lock again for its own swap
  fi
  echo "$KVER" > "$GUEST_DIR/kernel-version"
  t "install ok: $GUEST_DIR/vac-test-guest.iso (kernel $KVER)"
  command -v podman >/dev/null && install_podman_config
  if [ "${TESTENV_OSIMAGE:-1}" != 0 ]; then
    TESTENV_DIR=$TESTENV_DIR bash "$HERE/osimage.sh" install "$TESTENV_DIR/images"
  fi
}

# ---------------------------------------------------------------------------- LV shim
cmd_lvshim_sync() {
  # No device-mapper: LVs exist as LVM metadata only. Map each linear single-segment LV of $VG
  # onto its own loop device over the same extents of the PV's backing file and link
  # /dev/$VG/NAME to it; drop links (and loops) of LVs that no longer exist.
  have_dm && return 0
  mkdir -p "$TESTENV_DIR"; exec 8>"$TESTENV_DIR/lvshim.lock"; flock 8
  local vg lv range ext pv first last img pestart off size dev loop
  declare -A want=()
  while read -r vg lv range ext; do
    [ -n "$lv" ] || continue
    dev=/dev/$vg/$lv; want[$dev]=1
    case "$range" in *' '*|'') echo "lvshim: $vg/$lv has several segments, not shimmed" >&2; continue ;; esac
    pv=${range%%:*}; first=${range#*:}; first=${first%-*}; last=${range##*-}
    img=$(losetup -n -O BACK-FILE "$pv" 2>/dev/null | sed 's/ *$//') || true
    [ -n "$img" ] || { echo "lvshim: PV $pv of $vg is not a loop device" >&2; continue; }
    pestart=$(pvs --noheadings --units b --nosuffix -o pe_start "$pv" 2>/dev/null | tr -d ' ')
    off=$(( pestart + first * ext )); size=$(( (last - first + 1) * ext ))
    if [ -L "$dev" ]; then
      loop=$(readlink "$dev")
      [ "$(losetup -n -O OFFSET "$loop" 2>/dev/null | tr -d ' ')" = "$off" ] && continue
      losetup -d "$loop" 2>/dev/null || true; rm -f "$dev"
    fi
    loop=$(losetup --find --show --offset "$off" --sizelimit "$size" "$img")
    mkdir -p "/dev/$vg"; ln -sfn "$loop" "$dev"
  done < <(lvs --noheadings --units b --nosuffix --separator ' ' \
             -o vg_name,lv_name,seg_pe_ranges,vg_extent_size "$VG" 2>/dev/null)
  for dev in /dev/"$VG"/*; do
    [ -L "$dev" ] || continue
    if [ -z "${want[$dev]:-}" ]; then losetup -d "$(readlink "$dev")" 2>/dev/null || true; rm -f "$dev"; fi
  done
  return 0
}

write_shims() {
  mkdir -p "$BIN"
  cp "${BASH_SOURCE[0]}" "$BIN/vac-testenv"; chmod +x "$BIN/vac-testenv"
  local c
  for c in lvcreate lvremove; do
    cat > "$BIN/$c" <<EOF
#!/bin/bash
# LV shim of the vac test environment (no device-mapper): real $c, then sync loop devices.
export LVM_SUPPRESS_FD_WARNINGS=1
/sbin/$c "\$@"; rc=\$?
TESTENV_DIR=$TESTENV_DIR TESTENV_VG=$VG $BIN/vac-testenv lvshim-sync
exit \$rc
EOF
    chmod +x "$BIN/$c"
  done
}

# ---------------------------------------------------------------------------- start / stop
libvirtd_pid() {
  local pid
  pid=$(cat /run/libvirtd.pid 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
    echo "$pid"
}

wait_gone() {  # wait (up to ~5 s) until pid $1 has exited (a zombie counts as gone)
  local i st
  for i in $(seq 50); do
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ] && return 0
    sleep 0.1
  done
  return 1
}

stop_libvirt_objects() {
  local d n
  for d in $(virsh_q list --all --name 2>/dev/null); do
    virsh_q destroy "$d" >/dev/null 2>&1 || true
    virsh_q undefine --nvram "$d" >/dev/null 2>&1 || virsh_q undefine "$d" >/dev/null 2>&1 || true
  done
  for n in $(virsh_q net-list --all --name 2>/dev/null); do
    virsh_q net-destroy "$n" >/dev/null 2>&1 || true
    virsh_q net-undefine "$n" >/dev/null 2>&1 || true
  done
}

cmd_stop() {
  local pid loop
  if pid=$(libvirtd_pid); then
    stop_libvirt_objects
    kill "$pid" 2>/dev/null || true
    wait_gone "$pid" || { kill -9 "$pid" 2>/dev/null || true; wait_gone "$pid" || true; }
  fi
  if [ -e "/run/netns/$NS" ]; then
    # whatever still runs in our namespace was started by us (qemu, dnsmasq, test servers)
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    for pid in $(ip netns pids "$NS" 2>/dev/null); do
      wait_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
  fi
  if ! have_dm; then
    for dev in /dev/"$VG"/*; do
      [ -L "$dev" ] && { losetup -d "$(readlink "$dev")" 2>/dev/null || true; rm -f "$dev"; }
    done
    rmdir "/dev/$VG" 2>/dev/null || true
  fi
  if [ -f "$TESTENV_DIR/vg.img" ]; then
    if losetup -j "$TESTENV_DIR/vg.img" 2>/dev/null | grep -q .; then
      vgremove -qq -f "$VG" >/dev/null 2>&1 || true
    fi
    for loop in $(losetup -j "$TESTENV_DIR/vg.img" -O NAME -n 2>/dev/null); do
      pvremove -qq -f "$loop" >/dev/null 2>&1 || true
      losetup -d "$loop" 2>/dev/null || true
    done
    rm -f "$TESTENV_DIR/vg.img"
  fi
  have_dm || rm -rf /dev/mapper   # lvm mknods /dev/mapper/control even without device-mapper
  rm -f "$TESTENV_DIR/env.json"
  return 0
}

start_libvirtd() {
  [ -S /run/libvirt/libvirt-sock ] && virsh_q version >/dev/null 2>&1 &&
    die "a libvirtd outside the test environment answers on $URI; stop it first"
  : > "$TESTENV_DIR/libvirtd.log"
  # children (dnsmasq, qemu) inherit the namespace: bridge, iptables and ip_forward stay inside
  ip netns exec "$NS" env LIBVIRT_LOG_OUTPUTS="3:file:$TESTENV_DIR/libvirtd.log" \
    libvirtd -d 9>&- 8>&-
  local i
  for i in $(seq 150); do virsh_q list >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -n 20 "$TESTENV_DIR/libvirtd.log" >&2
  die "libvirtd did not answer on $URI within 15 s (log: $TESTENV_DIR/libvirtd.log)"
}

start_vg() {
  local loop
  vgs "$VG" >/dev/null 2>&1 && die "volume group $VG already exists outside the test environment"
  truncate -s "$VG_SIZE" "$TESTENV_DIR/vg.img"
  loop=$(losetup --find --show "$TESTENV_DIR/vg.img")
  pvcreate -qq "$loop" >/dev/null 2>&1 || die "pvcreate $loop failed"
  vgcreate -qq "$VG" "$loop" >/dev/null 2>&1 || die "vgcreate $VG $loop failed"
  echo "$loop"
}

write_env_json() {
  python3 - "$TESTENV_DIR/env.json" <<EOF
import json, os, sys
env = {
    "testenv_dir": "$TESTENV_DIR", "netns": "$NS", "libvirt_uri": "$URI",
    "volume_group": "$VG", "pv_device": "$1", "shim_bin": "$BIN",
    "device_mapper": $(have_dm && echo True || echo False),
    "guest_iso": "$GUEST_DIR/vac-test-guest.iso", "guest_kernel": "$GUEST_DIR/vmlinuz",
    "guest_initrd": "$GUEST_DIR/initrd.gz", "guest_cmdline": "console=ttyS0 panic=-1",
    "guest_disk_raw": "$GUEST_DIR/vac-test-guest.img",
    "guest_disk_qcow2": "$GUEST_DIR/vac-test-guest.qcow2",
    "kernel_version": open("$GUEST_DIR/kernel-version").read().strip(),
    "libvirtd_log": "$TESTENV_DIR/libvirtd.log",
}
for key in ("guest_disk_raw", "guest_disk_qcow2"):  # only built when xorriso is installed
    if not os.path.exists(env[key]):
        env[key] = None
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump(env, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, sys.argv[1])
EOF
}

cmd_start() {
  local loop
  [ -f "$GUEST_DIR/vac-test-guest.iso" ] || die "no test guest: run '$0 install' first"
  cmd_stop >/dev/null 2>&1 || true
  t "netns $NS"
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
  t "libvirtd"
  start_libvirtd
  t "volume group $VG on a loop device"
  loop=$(start_vg)
  t "LV shim in $BIN"
  write_shims
  write_env_json "$loop"
  t "start ok: $TESTENV_DIR/env.json"
}

cmd_status() {
  local pid rc=0
  echo "testenv dir: $TESTENV_DIR"
  if [ -e "/run/netns/$NS" ]; then echo "netns $NS: up"; else echo "netns $NS: absent"; rc=1; fi
  if pid=$(libvirtd_pid); then
    echo "libvirtd: pid $pid$(virsh_q list >/dev/null 2>&1 && echo ', answering' || echo ', NOT answering')"
    echo "domains: $(virsh_q list --all --name 2>/dev/null | tr '\n' ' ')"
    echo "networks: $(virsh_q net-list --all --name 2>/dev/null | tr '\n' ' ')"
  else echo "libvirtd: not running"; rc=1; fi
  if vgs "$VG" >/dev/null 2>&1; then
    echo "volume group $VG: $(vgs --noheadings -o pv_name,vg_size,vg_free "$VG" 2>/dev/null | xargs)"
    echo "logical volumes: $(lvs --noheadings -o lv_name "$VG" 2>/dev/null | xargs)"
  else echo "volume group $VG: absent"; rc=1; fi
  echo "shims: $(ls -l /dev/"$VG"/ 2>/dev/null | awk '/->/{print $(NF-2) "->" $NF}' | xargs)"
  echo "loop devices on vg.img: $(losetup -j "$TESTENV_DIR/vg.img" -O NAME -n 2>/dev/null | xargs)"
  echo "guest: $(ls "$GUEST_DIR"/vac-test-guest.iso 2>/dev/null || echo absent) kernel $(cat "$GUEST_DIR/kernel-version" 2>/dev/null)"
  if [ -f "$TESTENV_DIR/env.json" ]; then echo "env.json: present"; else echo "env.json: absent"; rc=1; fi
  local ino holders=""
  if ino=$(stat -c %i "$LOCK" 2>/dev/null); then
    for pid in $(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, a, ":"); if (a[n] == ino) print $5 }' /proc/locks); do
      holders="$holders $pid($(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-60))"
    done
  fi
  echo "lock:${holders:- free}"
  return $rc
}

[ "$(id -u)" = 0 ] || die "must run as root"
case "${1:-}" in
  install) cmd_install ;;
  start) lock; cmd_start ;;
  stop) lock; cmd_stop ;;
  status) cmd_status ;;
  lvshim-sync) cmd_lvshim_sync ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
