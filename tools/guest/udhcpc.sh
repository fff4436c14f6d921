#!/bin/sh
# udhcpc event script of the vac test guest: configure eth0 from the lease,
# take the hostname from it and report the lease on the console.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-16}" dev "$interface"
    if [ -n "$router" ]; then
      ip route add default via "${router%% *}" dev "$interface"
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    if [ -n "$hostname" ]; then
      hostname "$hostname"
      echo "$ip $hostname" >> /etc/hosts
    fi
    echo "$ip" > /run/vactest.ip
    echo "VACTEST lease ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname" > /dev/console
    ;;
esac
exit 0
