"""Configuration files in merge order (SPEC §1.1, checklist row 1)."""

from __future__ import annotations

import os
import socket

import pytest

from vac.adapters.conffiles import config_file_names, read_config_sources
from vac.errors import ConfigError


def _write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_order_vac_d_sorted_then_etc_then_run(paths):
    for name in ("b.conf", "a.conf", "B.conf", "10-x.conf", "notes.txt", "c.conf~",
                 ".hidden.conf"):
        _write(os.path.join(paths.etc_vac_d, name), name)
    os.symlink("root@host.1234:1700000000", os.path.join(paths.etc_vac_d, ".#a.conf"))
    _write(paths.run_vac_conf, "run")
    _write(paths.etc_vac_conf, "etc")
    names = [os.path.relpath(n, paths.root) for n in config_file_names(paths)]
    assert names == ["etc/vac.d/10-x.conf", "etc/vac.d/B.conf", "etc/vac.d/a.conf",
                     "etc/vac.d/b.conf", "etc/vac.conf", "var/run/vac.conf"]
    texts = [text for _, text in read_config_sources(paths)]
    assert texts == ["10-x.conf", "B.conf", "a.conf", "b.conf", "etc", "run"]


def test_nothing_there(paths):
    assert read_config_sources(paths) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_a_config_error(paths):
    _write(paths.etc_vac_conf, "x")
    os.chmod(paths.etc_vac_conf, 0)
    with pytest.raises(ConfigError, match="vac.conf: cannot read file"):
        read_config_sources(paths)


# --- a configuration path that is not a readable UTF-8 regular file is an error ---------
# (as root no file is unreadable by its mode: a dangling or looping symbolic link, a
# named pipe, a socket or a directory are what an admin can really end up with)

def _directory(path):
    os.makedirs(path)


def _dangling(path):
    os.symlink(path + ".missing", path)


def _loop(path):
    os.symlink(os.path.basename(path), path)


def _fifo(path):
    os.mkfifo(path)


def _socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.close()


def _latin1(path):
    _write(path, "")
    with open(path, "wb") as f:
        f.write(b"[settings]\n# caf\xe9\nvac_space = x\n")


@pytest.mark.parametrize("make,problem", [
    (_directory, "a directory, not a configuration file"),
    (_dangling, "dangling symbolic link to {target}.missing"),
    (_loop, "cannot read file (Too many levels of symbolic links)"),
    (_fifo, "a named pipe, not a configuration file"),
    (_socket, "a socket, not a configuration file"),
    (_latin1, ":2: not valid UTF-8 (byte 0xe9 at offset 16)"),
], ids=["directory", "dangling-symlink", "symlink-loop", "fifo", "socket", "latin-1"])
@pytest.mark.parametrize("where", ["vac.d", "etc", "run"])
def test_bad_configuration_path_is_an_error_naming_it(paths, make, problem, where):
    target = {"vac.d": os.path.join(paths.etc_vac_d, "20-site.conf"),
              "etc": paths.etc_vac_conf, "run": paths.run_vac_conf}[where]
    _write(os.path.join(paths.etc_vac_d, "10-ok.conf"), "[settings]\n")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    make(target)
    with pytest.raises(ConfigError) as e:
        read_config_sources(paths)           # never blocks on the named pipe
    problem = problem.format(target=target)
    assert e.value.problems == [f"{target}{problem}" if problem.startswith(":")
                                else f"{target}: {problem}"]


def test_every_bad_file_is_reported_at_once(paths):
    os.makedirs(os.path.join(paths.etc_vac_d, "a.conf"))
    _dangling(os.path.join(paths.etc_vac_d, "b.conf"))
    with pytest.raises(ConfigError) as e:
        read_config_sources(paths)
    assert [p.split(": ")[0] for p in e.value.problems] == [
        os.path.join(paths.etc_vac_d, "a.conf"), os.path.join(paths.etc_vac_d, "b.conf")]


def test_symbolic_link_to_a_file_is_read(paths):
    _write(str(paths.root) + "/puppet/site.conf", "[settings]\n")
    os.makedirs(paths.etc_vac_d)
    os.symlink(str(paths.root) + "/puppet/site.conf", os.path.join(paths.etc_vac_d, "s.conf"))
    assert [t for _, t in read_config_sources(paths)] == ["[settings]\n"]


def test_config_signature_changes_with_any_input_file(paths):
    from vac.adapters.conffiles import config_signature
    first = config_signature(paths)
    assert config_signature(paths) == first
    steps = [os.path.join(paths.etc_vac_d, "10-a.conf"), paths.etc_vac_conf,
             paths.run_vac_conf, paths.pipe_cache_file("vo")]
    seen = {first}
    for path in steps:
        _write(path, "x")
        now = config_signature(paths)
        assert now not in seen, path
        seen.add(now)
    _write(paths.etc_vac_conf, "longer text")
    assert config_signature(paths) not in seen
