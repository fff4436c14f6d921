# @summary APEL accounting: ssmsend and the certificate and key it sends with.
#
# Only when both vac::apel_cert_path and vac::apel_key_path are given (file sources,
# e.g. puppet:///modules/site/apel/hostcert.pem). The vac package's cron entries run
# ssmsend hourly and vac apel-sync daily; without the certificate they do nothing.
class vac::apel {
  if $vac::apel_cert_path != '' and $vac::apel_key_path != '' {
    package { 'apel-ssm':
      ensure => installed,
    }
    file { '/etc/grid-security/vac-apel-cert.pem':
      ensure => file,
      owner  => 'root',
      group  => 'root',
      mode   => '0644',
      source => $vac::apel_cert_path,
    }
    file { '/etc/grid-security/vac-apel-key.pem':
      ensure => file,
      owner  => 'root',
      group  => 'root',
      mode   => '0600',
      source => $vac::apel_key_path,
    }
  }
}
