# @summary NRPE command for check-vacd(8), present only when vac::nagios_nrpe is true.
class vac::monitoring {
  $ensure = $vac::nagios_nrpe ? { true => file, default => absent }
  file { '/etc/nrpe.d/nagios-plugins-check-vacd.cfg':
    ensure  => $ensure,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('vac/nrpe-check-vacd.cfg.epp', { 'seconds' => $vac::check_seconds }),
  }
  if $vac::nagios_nrpe {
    service { 'nrpe':
      ensure    => running,
      enable    => true,
      subscribe => File['/etc/nrpe.d/nagios-plugins-check-vacd.cfg'],
    }
  }
}
