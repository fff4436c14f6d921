#!/bin/bash
# The EL9 Python: a Python 3.9 virtualenv holding the oldest library versions vac
# supports (tools/el9-requirements.txt: what EL9 and EPEL 9 ship) plus pytest.
#   tools/py39env.sh             create or reuse it; print the path of its python
#   tools/py39env.sh --path      print that path only if the environment is ready
# Used by tests/packaging/test_python39.py (unit tests on Python 3.9) and by
# tools/build-rpm.sh on Debian (the interpreter of the EL9-target rpm build).
# Cached in $PY39_DIR (default $TESTENV_DIR/py39, i.e. /var/tmp/vac-test-env/py39) and
# rebuilt when the requirements or the interpreter change. Set-up output goes to
# $PY39_DIR/setup.log.
#
# The interpreter, first found: $VAC_PYTHON39; python3.9 on PATH; a pyenv 3.9
# (${PYENV_ROOT:-/root/.pyenv}/versions/3.9.*; the CI machines have one); EL9's own
# /usr/bin/python3.9. Debian 12 packages no Python 3.9 and pyenv cannot build one
# offline, so without any of these the script stops with an error saying so.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${PY39_DIR:-${TESTENV_DIR:-/var/tmp/vac-test-env}/py39}
requirements=$src/tools/el9-requirements.txt
venv=$dir/venv

is_py39() {
    [ -x "$1" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 9))' \
        >/dev/null 2>&1
}

find_python39() {
    local candidate
    for candidate in "${VAC_PYTHON39:-}" "$(command -v python3.9 2>/dev/null || :)" \
            "${PYENV_ROOT:-/root/.pyenv}"/versions/3.9.*/bin/python3.9 /usr/bin/python3.9; do
        if [ -n "$candidate" ] && is_py39 "$candidate"; then
            # a pyenv shim resolves to the real interpreter
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

stamp_of() {
    { cat "$requirements"; echo "$1"; } | sha256sum | cut -d' ' -f1
}

# is the virtualenv built from these requirements with interpreter $1?
current() {
    [ -x "$venv/bin/python" ] && [ -f "$dir/stamp" ] && \
        [ "$(cat "$dir/stamp")" = "$(stamp_of "$1")" ]
}

if [ "${1:-}" = --path ]; then
    current "$(cat "$dir/interpreter" 2>/dev/null)" && echo "$venv/bin/python" && exit 0
    exit 1
fi

python39=$(find_python39) || {
    echo "py39env: no Python 3.9 interpreter found (set VAC_PYTHON39, or install one:" \
         "pyenv's 3.9, EL9's python3.9)" >&2
    exit 1
}
mkdir -p "$dir"
exec 9>"$dir/lock"
flock 9
if current "$python39"; then
    echo "$venv/bin/python"
    exit 0
fi
rm -rf "$venv" "$dir/stamp"
{
    echo "py39env: $python39 -> $venv"
    "$python39" -m venv "$venv"
    # libvirt-python has no wheels: it compiles against libvirt-dev (tools/install-deps.sh)
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$requirements" "pytest<9" hypothesis
} >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; exit 1; }
echo "$python39" >"$dir/interpreter"
stamp_of "$python39" >"$dir/stamp"
echo "$venv/bin/python"
