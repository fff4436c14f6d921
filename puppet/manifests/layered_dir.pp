# @summary A directory assembled from layered Puppet file-server sources: for each file
# name, the first layer providing it wins (host, then subspaces, then space, then site).
# Files not in any layer are purged.
#
# @param source_path  file-server path holding one directory per layer
# @param layers       layer names, most specific first
# @param mode         mode of every file (undef: new files get 0644 and existing files
#                     keep the mode they have, so private keys can stay private)
define vac::layered_dir (
  String           $source_path,
  Array[String]    $layers,
  Optional[String] $mode = undef,
) {
  file { $title:
    ensure       => directory,
    recurse      => true,
    purge        => true,
    force        => true,
    owner        => 'root',
    group        => 'root',
    mode         => $mode,
    sourceselect => 'all',
    # source_path is the original's etc_path/machinetypes_path, which starts with
    # modules/ (e.g. modules/site/vac.d): puppet-lint cannot see that
    source       => $layers.map |$l| { "puppet:///${source_path}/${l}" }, # lint:ignore:puppet_url_without_modules
  }
}
