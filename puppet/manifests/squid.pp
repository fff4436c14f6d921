# @summary A local Squid for the machines (cvmfs proxy at 169.254.169.253:3128), peered
# with the other factories of the space. Squid restarts only when vac squid-conf changed
# its configuration (it writes only on change).
class vac::squid {
  if $vac::local_squid {
    package { 'squid':
      ensure => installed,
    }
    exec { 'vac-squid-conf':
      command => '/usr/sbin/vac squid-conf /etc/squid/squid.conf.vac /etc/squid/squid.conf',
      require => [Package['squid'], Package['vac'], Vac::Layered_dir['/etc/vac.d']],
      before  => Service['squid'],
    }
    service { 'squid':
      ensure    => running,
      enable    => true,
      subscribe => Exec['vac-squid-conf'],
    }
  }
}
