# @summary Host settings a factory needs: memory overcommit, KSM, root's ssh key.
#
# EL9 uses NetworkManager, which does not add the 169.254.0.0/16 zeroconf route that
# the original module switched off with NOZEROCONF, so nothing is needed for that.
class vac::host {
  # machines' memory is overcommitted (KSM shares identical pages between them)
  file { '/etc/sysctl.d/90-vac.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# managed by Puppet (class vac)\nvm.overcommit_memory = 1\n",
  }
  exec { 'vac-sysctl-overcommit':
    command => '/usr/sbin/sysctl -p /etc/sysctl.d/90-vac.conf',
    unless  => '/usr/bin/test "$(cat /proc/sys/vm/overcommit_memory)" = 1',
    require => File['/etc/sysctl.d/90-vac.conf'],
  }

  if $vac::manage_ksm {
    service { 'ksm':
      ensure => running,
      enable => true,
    }
    service { 'ksmtuned':
      ensure  => running,
      enable  => true,
      require => Service['ksm'],
    }
    # merging across NUMA nodes has made some kernels unstable: keep KSM per node
    exec { 'vac-ksm-merge-across-nodes':
      command  => join(['/usr/bin/systemctl stop ksm', 'echo 2 > /sys/kernel/mm/ksm/run',
        'echo 0 > /sys/kernel/mm/ksm/merge_across_nodes', '/usr/bin/systemctl start ksm'], ' && '),
      provider => shell,
      onlyif   => '/usr/bin/test -w /sys/kernel/mm/ksm/merge_across_nodes',
      unless   => '/usr/bin/test "$(cat /sys/kernel/mm/ksm/merge_across_nodes)" = 0',
      require  => Service['ksm'],
    }
  }

  # vac gives root's public key to the machines: 00-puppet.conf sets root_public_key to
  # the same file that is generated here
  $key = $vac::root_public_key
  $key_type = $key ? {
    /id_rsa\.pub\z/   => 'rsa',
    /id_ecdsa\.pub\z/ => 'ecdsa',
    default           => 'ed25519',
  }
  $private_key = regsubst($key, '\.pub\z', '')
  $key_dir = regsubst($key, '/[^/]+\z', '')
  file { $key_dir:                     # a fresh EL9 host has no /root/.ssh
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0700',
  }
  exec { 'vac-root-ssh-key':
    command => "/usr/bin/ssh-keygen -q -t ${key_type} -N '' -f ${private_key}",
    creates => $key,
    require => File[$key_dir],
  }
}
