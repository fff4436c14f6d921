"""Text -> typed value converters: good values, and bad values with an "expected" text."""

from __future__ import annotations

import pytest

from vac.core import options as o


@pytest.mark.parametrize("convert, text, value", [
    (o.integer(), " 42 ", 42),
    (o.integer(1), "1", 1),
    (o.integer(1, 10), "10", 10),
    (o.real(), "1.5", 1.5),
    (o.real(0), "0", 0.0),
    (o.real(strictly_positive=True), "1e-3", 0.001),
    (o.boolean, "TRUE", True), (o.boolean, "yes", True), (o.boolean, "On", True),
    (o.boolean, "1", True), (o.boolean, "false", False), (o.boolean, "No", False),
    (o.boolean, "off", False), (o.boolean, "0", False),
    (o.choice("kvm", "qemu"), "QEMU", "qemu"),
    (o.words, "a  b\nc", ("a", "b", "c")),
    (o.hostnames, "F1 f2.example.com\n .", ("f1", "f2.example.com", ".")),
    (o.hostport, "Mon.Example.org:8884", "mon.example.org:8884"),
    (o.hostport_list, "a.b:1 C.d:2", ("a.b:1", "c.d:2")),
    (o.hostport_list, "", ()),
    (o.port_list, "3128 80 3128", (80, 3128)),
    (o.port_list, "", ()),
    (o.fqdn, "F1.Example.COM", "f1.example.com"),
    (o.space_name, "Vac01.Example.com", "Vac01.Example.com"),
    (o.absolute_path, "/etc/x", "/etc/x"),
    (o.absolute_paths, "/a /b", ("/a", "/b")),
    (o.file_name, "heartbeat", "heartbeat"),
    (o.file_names, "atlas.cern.ch grid.cern.ch", ("atlas.cern.ch", "grid.cern.ch")),
    (o.device, "vda", "vda"), (o.device, "hda1", "hda1"),
    (o.regex, "^/DC=ch/.*$", "^/DC=ch/.*$"),
    (o.fqan, "/lhcb/Role=NULL/Capability=NULL", "/lhcb/Role=NULL/Capability=NULL"),
    (o.volume_group, "vac_volume_group", "vac_volume_group"),
    (o.interface, "eth0", "eth0"),
    (o.ip_address(), "169.254.169.254", "169.254.169.254"),
    (o.ip_address(allow_empty=True), "", ""),
    (o.ip_address(), "::1", "::1"),
    (o.url(("http", "https")), "https://x.org/p", "https://x.org/p"),
    (o.libvirt_uri, "qemu:///system", "qemu:///system"),
    (o.unix_time, "1700000000", 1700000000),
    (o.version_logger, "true", 1), (o.version_logger, "false", 0), (o.version_logger, "3", 3),
    (o.nonempty, " x ", "x"),
    (o.single_word, "word", "word"),
    (o.text, "any text", "any text"),
])
def test_good_values(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize("convert, text, expected", [
    (o.integer(), "ten", "expected an integer"),
    (o.integer(), "1.5", "expected an integer"),
    (o.integer(1), "0", "expected an integer >= 1"),
    (o.integer(1, 65535), "70000", "expected an integer from 1 to 65535"),
    (o.integer(None, 5), "6", "expected an integer <= 5"),
    (o.real(), "x", "expected a number"),
    (o.real(), "nan", "expected a number"),
    (o.real(), "inf", "expected a number"),
    (o.real(0), "-1", "expected a number >= 0"),
    (o.real(strictly_positive=True), "0", "expected a number > 0"),
    (o.boolean, "maybe", "expected true or false"),
    (o.choice("kvm", "qemu"), "xen", "expected one of kvm, qemu"),
    (o.hostnames, "bad_name", "expected host names"),
    (o.hostport, "host", "expected host.domain:port"),
    (o.hostport, "host:99999", "expected host.domain:port"),
    (o.hostport_list, "a.b:1 host", "expected a list of host.domain:port"),
    (o.port_list, "80 squid", "expected a list of port numbers 1-65535"),
    (o.port_list, "0", "expected a list of port numbers 1-65535"),
    (o.fqdn, "factory1", "fully qualified"),
    (o.space_name, "space", "FQDN-like space name"),
    (o.space_name, "a b.c", "FQDN-like space name"),
    (o.absolute_path, "relative/x", "absolute path"),
    (o.absolute_paths, "/a b", "absolute paths"),
    (o.file_name, "../x", "bare file name"),
    (o.file_name, "", "bare file name"),
    (o.file_names, "a/b", "bare names"),
    (o.device, "sd-a", "a-z 0-9"),
    (o.regex, "(", "regular expression"),
    (o.fqan, "lhcb", "FQAN"),
    (o.volume_group, "-bad", "volume group"),
    (o.interface, "this-name-is-far-too-long", "interface"),
    (o.ip_address(), "1.2.3", "IP address"),
    (o.ip_address(allow_empty=True), "x", 'or "" for all'),
    (o.url(("http", "https")), "ftp://x", "http:// or https://"),
    (o.libvirt_uri, "system", "libvirt URI"),
    (o.unix_time, "tomorrow", "Unix time in seconds"),
    (o.version_logger, "often", "expected an integer >= 0"),
    (o.nonempty, "  ", "non-empty"),
    (o.single_word, "two words", "single word"),
    (o.listen_address, "127.0.0.1", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "127.0.0.1:0", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "127.0.0.1:65536", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "[::1]:8995", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "::1:8995", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "1.2.3:8995", "IPV4_ADDRESS:PORT"),
    (o.listen_address, "bad_host:8995", "IPV4_ADDRESS:PORT"),
    (o.listen_address, ":8995", "IPV4_ADDRESS:PORT"),
])
def test_bad_values_say_what_is_expected(convert, text, expected):
    with pytest.raises(ValueError) as e:
        convert(text)
    assert expected in str(e.value)
    assert str(e.value).startswith("expected")


def test_listen_address():
    assert o.listen_address("") == ""
    assert o.listen_address(" 127.0.0.1:08995 ") == "127.0.0.1:8995"
    assert o.listen_address("Mgmt.Example.org:8995") == "mgmt.example.org:8995"
    assert o.listen_address("0.0.0.0:8995") == "0.0.0.0:8995"
    assert o.split_listen_address("127.0.0.1:8995") == ("127.0.0.1", 8995)
