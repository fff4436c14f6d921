#!/bin/bash
# Build the vac and vac-command RPMs from this source tree (works on EL9 and on Debian,
# whose "rpm" package provides rpmbuild).
#   tools/build-rpm.sh [TOPDIR]    (default: build/rpm in the source tree)
# Source0 is made from the working tree: the files git knows (tracked, or new and not
# ignored), so uncommitted changes are packaged too. Prints the paths of the built RPMs.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
top=$(mkdir -p "${1:-$src/build/rpm}" && cd "${1:-$src/build/rpm}" && pwd)
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/vac/__init__.py")
[ -n "$version" ] || { echo "$0: no __version__ in vac/__init__.py" >&2; exit 1; }
mkdir -p "$top"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}

cd "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
else
    find . -path ./.venv -prune -o -path ./build -prune -o -path ./.git -prune \
        -o -type f -print0
fi | while IFS= read -r -d '' f; do
    case "$f" in ./*) f=${f#./} ;; esac
    case "$f" in .venv/*|build/*|*/__pycache__/*|*.pyc) continue ;; esac
    [ -f "$f" ] && printf '%s\0' "$f"
done | tar -czf "$top/SOURCES/vac-$version.tar.gz" --null -T - \
        --transform "s,^,vac-$version/," --owner=0 --group=0 --mtime=@0

rpmbuild -ba "$src/vac.spec" --define "_topdir $top" --define "vac_version $version" \
    --quiet >"$top/rpmbuild.log" 2>&1 || { cat "$top/rpmbuild.log" >&2; exit 1; }
ls "$top"/RPMS/noarch/vac-*"$version"-1*.noarch.rpm "$top"/SRPMS/vac-"$version"-1*.src.rpm
