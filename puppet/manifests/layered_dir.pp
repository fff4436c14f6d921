# @summary A directory assembled from layered Puppet file-server sources: for each file
# name, the first layer providing it wins (host, then subspaces, then space, then site).
# Files not in any layer are purged.
#
# @param source_path  file-server path holding one directory per layer
# @param layers       layer names, most specific first
define vac::layered_dir (
  String        $source_path,
  Array[String] $layers,
) {
  file { $title:
    ensure       => directory,
    recurse      => true,
    purge        => true,
    force        => true,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    sourceselect => 'all',
    source       => $layers.map |$l| { "puppet:///${source_path}/${l}" },
  }
}
