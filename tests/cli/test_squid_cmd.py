"""vac squid-conf: acl/cache_peer lines, self not a peer, write only on change, B15."""

from __future__ import annotations

import os

from vac import cli
from tests.services.respondertools import write

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "squid",
                        "squid.conf.vac")
ADDRESSES = {"f1.example.com": "10.0.0.1", "f2.example.com": "10.0.0.2"}


def setup(paths, monkeypatch):
    write(paths.etc_vac_conf, "[settings]\nvac_space = vac01.example.com\n"
          "factory_hostname = f1.example.com\nfactories = f2 f1 f9\n")
    monkeypatch.setattr("vac.adapters.dns.resolve_ipv4",
                        lambda name, timeout=2.0: ADDRESSES.get(name))


def test_squid_conf_writes_once(paths, monkeypatch, tmp_path, capsys):
    setup(paths, monkeypatch)
    out = str(tmp_path / "squid.conf")
    assert cli.main(["--root", paths.root, "squid-conf", TEMPLATE, out]) == 0
    with open(out) as f:
        text = f.read()
    with open(TEMPLATE) as f:
        assert text.startswith(f.read())
    assert text.endswith("acl localnet src 10.0.0.1/32\nacl localnet src 10.0.0.2/32\n"
                         "cache_peer 10.0.0.2 sibling 3128 3130 default\n")
    assert "cache_peer 10.0.0.1" not in text and "f9" in capsys.readouterr().err
    os.utime(out, (1000, 1000))
    assert cli.main(["--root", paths.root, "squid-conf", TEMPLATE, out]) == 0
    assert os.stat(out).st_mtime == 1000


def test_squid_conf_check_writes_nothing_and_says_if_it_would(paths, monkeypatch, tmp_path):
    """The Puppet module's `unless`: Squid restarts only when the file would change."""
    setup(paths, monkeypatch)
    out = tmp_path / "squid.conf"
    assert cli.main(["--root", paths.root, "squid-conf", "--check", TEMPLATE, str(out)]) == 1
    assert not out.exists()
    assert cli.main(["--root", paths.root, "squid-conf", TEMPLATE, str(out)]) == 0
    assert cli.main(["--root", paths.root, "squid-conf", "--check", TEMPLATE, str(out)]) == 0
    monkeypatch.setitem(ADDRESSES, "f2.example.com", "10.0.0.3")      # a peer moved
    assert cli.main(["--root", paths.root, "squid-conf", "--check", TEMPLATE, str(out)]) == 1
    assert "10.0.0.3" not in out.read_text()


def test_squid_conf_errors(paths, monkeypatch, tmp_path, capsys):
    setup(paths, monkeypatch)
    out = str(tmp_path / "squid.conf")
    assert cli.main(["--root", paths.root, "squid-conf", TEMPLATE]) == 2
    assert "requires input and output" in capsys.readouterr().err
    assert cli.main(["--root", paths.root, "squid-conf", str(tmp_path / "none"), out]) == 1
    assert "Cannot read" in capsys.readouterr().err and not os.path.exists(out)
    assert cli.main(["--root", paths.root, "squid-conf", TEMPLATE,
                     str(tmp_path / "no" / "dir" / "x")]) == 1
