# @summary A local Squid for the machines (cvmfs proxy at 169.254.169.253:3128), peered
# with the other factories of the space. The exec runs, and so Squid restarts, only
# when vac squid-conf --check says the configuration would change.
class vac::squid {
  if $vac::local_squid {
    $files = '/etc/squid/squid.conf.vac /etc/squid/squid.conf'
    package { 'squid':
      ensure => installed,
    }
    exec { 'vac-squid-conf':
      command => "/usr/sbin/vac squid-conf ${files}",
      unless  => "/usr/sbin/vac squid-conf --check ${files}",
      require => [Package['squid'], Package['vac'], Vac::Layered_dir['/etc/vac.d'],
        File['/etc/vac.d/00-puppet.conf']],
      before  => Service['squid'],
    }
    service { 'squid':
      ensure    => running,
      enable    => true,
      subscribe => Exec['vac-squid-conf'],
    }
  }
}
