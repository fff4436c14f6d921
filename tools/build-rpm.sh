#!/bin/bash
# Build vac's RPMs from this source tree.
#   tools/build-rpm.sh --srpm [TOPDIR]   the source RPM only: the release artefact
#   tools/build-rpm.sh [TOPDIR]          the source RPM, then the binary RPMs for EL9
#                                        rebuilt from it, then rpmlint on all of them
# TOPDIR defaults to build/rpm in the source tree. Source0 is made from the working
# tree: the files git knows (tracked, or new and not ignored), so uncommitted changes
# are packaged too. Prints the paths of the built packages, source RPM last.
#
# On EL9 the system's python3/systemd rpm macros are used. Elsewhere (Debian, whose
# "rpm" package provides rpmbuild) tools/rpm-el9.macros stands in for them and the
# build runs with the Python 3.9 of tools/py39env.sh, so the binary RPMs are the same
# as on EL9: python(abi) = 3.9, /usr/lib/python3.9/site-packages, byte-code for 3.9.
# rpmlint's report is written to TOPDIR/rpmlint.txt; any error fails the build.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
srpm_only=
if [ "${1:-}" = --srpm ]; then srpm_only=1; shift; fi
top=$(mkdir -p "${1:-$src/build/rpm}" && cd "${1:-$src/build/rpm}" && pwd)
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/vac/__init__.py")
[ -n "$version" ] || { echo "$0: no __version__ in vac/__init__.py" >&2; exit 1; }
spec_version=$(sed -n 's/^Version: *//p' "$src/vac.spec")
[ "$version" = "$spec_version" ] || {
    echo "$0: vac.spec Version $spec_version differs from vac/__init__.py $version" >&2
    exit 1
}
rm -rf "$top"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}
mkdir -p "$top"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}

cd "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
else
    find . -path ./.venv -prune -o -path ./build -prune -o -path ./.git -prune \
        -o -type f -print0
fi | while IFS= read -r -d '' f; do
    case "$f" in ./*) f=${f#./} ;; esac
    case "$f" in .venv/*|build/*|*/__pycache__/*|*.pyc|*.egg-info/*) continue ;; esac
    [ -f "$f" ] && printf '%s\0' "$f"
done | tar -czf "$top/SOURCES/vac-$version.tar.gz" --null -T - \
        --transform "s,^,vac-$version/," --owner=0 --group=0 --mtime=@0
cp "$src/vac.spec" "$top/SPECS/vac.spec"

# the EL9 build profile, unless the system rpm is an EL one with python3 macros
profile=()
if [ "$(rpm --eval '%{?python3_sitelib}')" = "" ]; then
    python39=$(bash "$src/tools/py39env.sh")
    # --nodeps: Debian's rpm database knows no BuildRequires; the py39 virtualenv holds
    # what they stand for (setuptools, the imports of %check) and the profile the macros
    profile=(--load "$src/tools/rpm-el9.macros" --define "__python3 $python39" --nodeps)
fi

run() {   # rpmbuild, its output in TOPDIR/rpmbuild.log (shown on failure)
    rpmbuild "$@" --define "_topdir $top" "${profile[@]}" >>"$top/rpmbuild.log" 2>&1 \
        || { cat "$top/rpmbuild.log" >&2; exit 1; }
}
: >"$top/rpmbuild.log"
run -bs "$top/SPECS/vac.spec"
srpm=$(ls "$top"/SRPMS/vac-"$version"-1*.src.rpm)
if [ -n "$srpm_only" ]; then
    echo "$srpm"
    exit 0
fi
run --rebuild "$srpm"
rpms=("$top"/RPMS/noarch/vac-*"$version"-1*.noarch.rpm)

if command -v rpmlint >/dev/null 2>&1; then
    # EL9's rpmlint policy; the spec's header justifies every warning that remains
    rpmlint -c "$src/tools/rpmlint-el9.toml" "$src/vac.spec" "$srpm" "${rpms[@]}" \
        >"$top/rpmlint.txt" 2>&1 || { cat "$top/rpmlint.txt" >&2; exit 1; }
fi
ls "${rpms[@]}" "$srpm"
