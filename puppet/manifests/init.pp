# @summary Installs and runs a Vac factory (vacd) on an EL9 worker host with systemd.
#
# /etc/vac.d is assembled from layered sources on the Puppet file server: the first
# source that provides a given file name wins, so host-specific files beat subspace
# files, which beat space files, which beat site files (SPEC 11.3). /etc/vac.conf is
# deliberately not managed: it is for manual overrides on one host.
# Machinetype directories (user_data, host certificates, ...) under
# /var/lib/vac/machinetypes are layered the same way; their private keys are kept
# private (mode 0600), everything else keeps the mode it has.
# In addition, 00-puppet.conf holds the [settings] given as class parameters and
# 90-puppet-shares.conf the target shares of machinetypes defined in the sources.
#
# The parameters of the original module (space, subspace, subspace1..subspace9,
# etc_path, machinetypes_path, nagios_nrpe, apel_bdii_hostport, apel_cert_path,
# apel_key_path, local_squid) keep their names and meaning; subspace..subspace9 and
# apel_bdii_hostport are deprecated.
#
# @param space            vac_space: the space name (a DNS name)
# @param factories        the factories of the space (VacQuery peers)
# @param subspaces        subspace names, most specific first (sources <space>:<subspace>)
# @param subspace         deprecated: one subspace, after those of subspaces
# @param subspace1        deprecated: further subspaces, in this order (subspace1..9)
# @param subspace2        deprecated, see subspace1
# @param subspace3        deprecated, see subspace1
# @param subspace4        deprecated, see subspace1
# @param subspace5        deprecated, see subspace1
# @param subspace6        deprecated, see subspace1
# @param subspace7        deprecated, see subspace1
# @param subspace8        deprecated, see subspace1
# @param subspace9        deprecated, see subspace1
# @param etc_path         file-server path of the vac.d source tree
# @param machinetypes_path file-server path of the machinetypes source tree
# @param machinetypes_private_files  name patterns (find -name) of the private keys
#                         under /var/lib/vac/machinetypes: made mode 0600 (vac refuses
#                         keys that group or others can read)
# @param volume_group     LVM volume group for machine disks (undef: vac's default)
# @param total_processors processors vac may use (undef: all of the host)
# @param shares           target_share per machinetype name
# @param root_public_key  root's public key, given to the machines; generated (type
#                         from its name: id_rsa, id_ecdsa, else ed25519) if missing
# @param nagios_nrpe      install the NRPE command for check-vacd
# @param check_seconds    heartbeat age limit passed to check-vacd
# @param apel_bdii_hostport deprecated and ignored (as in the original)
# @param apel_cert_path   source of the APEL certificate ('' = APEL not set up)
# @param apel_key_path    source of the APEL key ('' = APEL not set up)
# @param local_squid      run a Squid cache for the machines, peered with the factories
# @param manage_ksm       enable KSM and ksmtuned (memory de-duplication between VMs)
# @param metrics_address  HOST:PORT of vacd's Prometheus /metrics and /status.json
#                         (e.g. '127.0.0.1:8995'; undef: no metrics role)
# @param package_ensure   ensure value of the vac package
class vac (
  String                  $space             = "vac01.${facts['networking']['domain']}",
  Array[String]           $factories         = [],
  Array[String]           $subspaces         = [],
  String                  $subspace          = '',
  String                  $subspace1         = '',
  String                  $subspace2         = '',
  String                  $subspace3         = '',
  String                  $subspace4         = '',
  String                  $subspace5         = '',
  String                  $subspace6         = '',
  String                  $subspace7         = '',
  String                  $subspace8         = '',
  String                  $subspace9         = '',
  String                  $etc_path          = 'modules/vac/vac.d',
  String                  $machinetypes_path = 'modules/vac/machinetypes',
  Array[String[1]]        $machinetypes_private_files = ['*key.pem', '*.key'],
  Optional[String]        $volume_group      = undef,
  Optional[Integer[1]]    $total_processors  = undef,
  Hash[String, Numeric]   $shares            = {},
  Pattern[/\A\/.+\.pub\z/] $root_public_key = '/root/.ssh/id_ed25519.pub',
  Boolean                 $nagios_nrpe       = false,
  Integer[1]              $check_seconds     = 600,
  String                  $apel_bdii_hostport = '',
  String                  $apel_cert_path    = '',
  String                  $apel_key_path     = '',
  Boolean                 $local_squid       = false,
  Boolean                 $manage_ksm        = true,
  Optional[String[1]]     $metrics_address   = undef,
  String                  $package_ensure    = 'installed',
) {
  $fqdn = $facts['networking']['fqdn']
  $legacy_subspaces = [$subspace, $subspace1, $subspace2, $subspace3, $subspace4,
    $subspace5, $subspace6, $subspace7, $subspace8, $subspace9].filter |$s| { $s != '' }
  unless $legacy_subspaces.empty {
    warning('vac: parameters subspace and subspace1..subspace9 are deprecated: use subspaces')
  }
  if $apel_bdii_hostport != '' {
    warning('vac: parameter apel_bdii_hostport is deprecated and ignored')
  }
  $layers = [$fqdn] + ($subspaces + $legacy_subspaces).map |$s| { "${space}:${s}" } +
    [$space, 'site']

  package { 'vac':
    ensure => $package_ensure,
  }

  vac::layered_dir { '/etc/vac.d':
    source_path => $etc_path,
    layers      => $layers,
    mode        => '0644',
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
      'root_public_key'  => $root_public_key,
      'metrics_address'  => $metrics_address,
      'local_squid'      => $local_squid,
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

  # No mode here: the files keep theirs (a site's chmod stays) and the exec makes
  # the private keys private, so that vac accepts them.
  vac::layered_dir { '/var/lib/vac/machinetypes':
    source_path => $machinetypes_path,
    layers      => $layers,
    require     => Package['vac'],
  }
  $private = $machinetypes_private_files.map |$n| { "-name '${n}'" }.join(' -o ')
  $readable_keys = "find /var/lib/vac/machinetypes -type f \\( ${private} \\) -perm /077"
  exec { 'vac-machinetypes-private-keys':
    command  => "${readable_keys} -exec chmod go= {} +",
    onlyif   => "${readable_keys} | grep -q .",
    path     => ['/usr/bin', '/bin'],
    provider => shell,
    require  => Vac::Layered_dir['/var/lib/vac/machinetypes'],
  }

  service { 'libvirtd':
    ensure => running,
    enable => true,
  }

  service { 'vacd':
    ensure  => running,
    enable  => true,
    require => [Package['vac'], Service['libvirtd'], Exec['vac-machinetypes-private-keys']],
  }

  contain vac::host
  contain vac::monitoring
  contain vac::apel
  contain vac::squid
}
