# @summary Installs and runs a Vac factory (vacd) on an EL9 worker host with systemd.
#
# /etc/vac.d is assembled from layered sources on the Puppet file server: the first
# source that provides a given file name wins, so host-specific files beat subspace
# files, which beat space files, which beat site files (SPEC 11.3). /etc/vac.conf is
# deliberately not managed: it is for manual overrides on one host.
# Machinetype directories (user_data, host certificates, ...) under
# /var/lib/vac/machinetypes are layered the same way.
# In addition, 00-puppet.conf holds the [settings] given as class parameters and
# 90-puppet-shares.conf the target shares of machinetypes defined in the sources.
#
# @param space            vac_space: the space name (a DNS name)
# @param factories        the factories of the space (VacQuery peers)
# @param subspaces        subspace names, most specific first (sources <space>:<subspace>)
# @param etc_path         file-server path of the vac.d source tree
# @param machinetypes_path file-server path of the machinetypes source tree
# @param volume_group     LVM volume group for machine disks (undef: vac's default)
# @param total_processors processors vac may use (undef: all of the host)
# @param shares           target_share per machinetype name
# @param nagios_nrpe      install the NRPE command for check-vacd
# @param check_seconds    heartbeat age limit passed to check-vacd
# @param apel_cert_path   source of the APEL certificate ('' = APEL not set up)
# @param apel_key_path    source of the APEL key ('' = APEL not set up)
# @param local_squid      run a Squid cache for the machines, peered with the factories
# @param manage_ksm       enable KSM and ksmtuned (memory de-duplication between VMs)
# @param package_ensure   ensure value of the vac package
class vac (
  String                  $space             = "vac01.${facts['networking']['domain']}",
  Array[String]           $factories         = [],
  Array[String]           $subspaces         = [],
  String                  $etc_path          = 'modules/vac/vac.d',
  String                  $machinetypes_path = 'modules/vac/machinetypes',
  Optional[String]        $volume_group      = undef,
  Optional[Integer[1]]    $total_processors  = undef,
  Hash[String, Numeric]   $shares            = {},
  Boolean                 $nagios_nrpe       = false,
  Integer[1]              $check_seconds     = 600,
  String                  $apel_cert_path    = '',
  String                  $apel_key_path     = '',
  Boolean                 $local_squid       = false,
  Boolean                 $manage_ksm        = true,
  String                  $package_ensure    = 'installed',
) {
  $fqdn = $facts['networking']['fqdn']
  $layers = [$fqdn] + $subspaces.map |$s| { "${space}:${s}" } + [$space, 'site']

  package { 'vac':
    ensure => $package_ensure,
  }

  vac::layered_dir { '/etc/vac.d':
    source_path => $etc_path,
    layers      => $layers,
    require     => Package['vac'],
    notify      => Service['vacd'],
  }

  file { '/etc/vac.d/00-puppet.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('vac/vac.d/00-puppet.conf.epp', {
      'space'            => $space,
      'factories'        => $factories,
      'volume_group'     => $volume_group,
      'total_processors' => $total_processors,
    }),
    notify  => Service['vacd'],
  }

  $shares_ensure = $shares.empty ? { true => absent, default => file }
  file { '/etc/vac.d/90-puppet-shares.conf':
    ensure  => $shares_ensure,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('vac/vac.d/90-puppet-shares.conf.epp', { 'shares' => $shares }),
    notify  => Service['vacd'],
  }

  vac::layered_dir { '/var/lib/vac/machinetypes':
    source_path => $machinetypes_path,
    layers      => $layers,
    require     => Package['vac'],
  }

  service { 'libvirtd':
    ensure => running,
    enable => true,
  }

  service { 'vacd':
    ensure  => running,
    enable  => true,
    require => [Package['vac'], Service['libvirtd']],
  }

  contain vac::host
  contain vac::monitoring
  contain vac::apel
  contain vac::squid
}
