#!/bin/bash
# Run a command (puppet apply) on this host's real paths, but inside a private mount and
# UTS namespace where /etc, /root, /usr/sbin and /var/lib are overlays: whatever it
# writes there lands in SCRATCH/upper/<dir>, so the host is left untouched and the
# test reads back exactly what was written. Test glue for tests/packaging/test_puppet.py.
#   unshare --mount --uts --propagation private \
#       puppet_scratch_root.sh SCRATCH HOSTNAME COMMAND...
# Also, inside: the host name is HOSTNAME (facter's fqdn); /proc/sys/vm/overcommit_memory,
# which is not namespaced, is a file SCRATCH/overcommit_memory; /sys/kernel/mm/ksm is
# an empty tmpfs (so KSM execs find no KSM to change).
set -euo pipefail
scratch=$1 name=$2
shift 2
for dir in etc root usr/sbin var/lib; do
    mkdir -p "$scratch/upper/$dir" "$scratch/work/$dir"
    mount -t overlay overlay \
        -o "lowerdir=/$dir,upperdir=$scratch/upper/$dir,workdir=$scratch/work/$dir" "/$dir"
done
[ -f "$scratch/overcommit_memory" ] || echo 0 >"$scratch/overcommit_memory"
mount --bind "$scratch/overcommit_memory" /proc/sys/vm/overcommit_memory
if [ -d /sys/kernel/mm/ksm ]; then mount -t tmpfs -o ro none /sys/kernel/mm/ksm; fi
hostname "$name"
exec "$@"
