"""VacQuery 01.03 codec: cookies, requests (incl. legacy method), responses, validation."""

from __future__ import annotations

import hashlib
import json

import pytest

from vac.core import vacquery as vq
from vac.errors import ProtocolError

SALT = vq.make_salt(bytes(range(32)))
SPACE = "vac01.example.com"
FACTORY = "factory1.example.com"


def _pretty(msg) -> str:
    return json.dumps(msg, indent=2, sort_keys=True) + "\n"


def machine_body():
    return {"num_machines": 2, "machine": "factory1-00.example.com", "state": "Running",
            "machine_model": "cernvm3", "uuid": "0b0f0c6e-uuid", "created_time": 1699990000,
            "started_time": 1699990010, "heartbeat_time": 1699999990, "num_cpus": 2,
            "num_processors": 2, "cpu_seconds": 19000, "cpu_percentage": 99.1, "hs06": 20.0,
            "machinetype": "lhcb", "shutdown_message": None, "shutdown_time": None,
            "fqan": "/lhcb/Role=NULL/Capability=NULL", "vo": "lhcb"}


def machinetype_body():
    return {"num_machinetypes": 1, "machinetype": "lhcb", "bytes_per_processor": 2147483648,
            "running_hs06": 20.0, "running_machines": 1, "running_cpus": 2,
            "running_processors": 2, "num_before_fizzle": 0,
            "shutdown_message": "300 Nothing to do", "shutdown_time": 1699980000,
            "shutdown_machine": "factory1-01.example.com", "max_wallclock_seconds": 172800,
            "min_wallclock_seconds": 172800, "max_processors": 2, "min_processors": 1}


def factory_body():
    ints = ("running_cpus", "running_processors", "running_machines", "max_cpus",
            "max_processors", "max_machines", "total_cpus", "total_machines",
            "root_disk_avail_kb", "root_disk_avail_inodes", "vac_disk_avail_kb",
            "daemon_disk_avail_kb", "vac_disk_avail_inodes", "daemon_disk_avail_inodes",
            "boot_time", "factory_heartbeat_time", "responder_heartbeat_time",
            "mjf_heartbeat_time", "metadata_heartbeat_time", "swap_used_kb", "swap_free_kb",
            "mem_used_kb", "mem_total_kb")
    body = {k: i + 1 for i, k in enumerate(ints)}
    body.update(running_hs06=2.0, max_hs06=20.0, total_hs06=20.0, load_average=0.42,
                kernel_version="6.1.0-13-amd64", os_issue="Debian GNU/Linux 12")
    return body


def subspace_body():
    """A subspace's sums of one machinetype, as vac.core.subspaces makes them."""
    from vac.core import subspaces
    names = [f"factory{i}.example.com" for i in range(30)]
    lay = subspaces.layout(names, FACTORY, 25, 5)
    reports = {f: {"lhcb": dict(machinetype_body(), preemptible_processors=1)}
               for f in lay.groups[lay.own][:2]}
    state = subspaces.digest_state(lay, reports, 1699999990)
    return subspaces.status_bodies(state, 1700000000)[0]


BODIES = {vq.MACHINE_STATUS: machine_body, vq.MACHINETYPE_STATUS: machinetype_body,
          vq.FACTORY_STATUS: factory_body, vq.SUBSPACE_STATUS: subspace_body}


def make_response(mtype):
    return vq.response(mtype, BODIES[mtype](), space=SPACE, factory=FACTORY,
                       cookie_hex=vq.cookie(SALT, FACTORY), version="04.00.00",
                       time_sent=1700000000, site=vq.site_name(SPACE))


def test_cookie_is_sha256_of_salt_and_factory():
    assert vq.cookie("abc", "f.example.com") == hashlib.sha256(b"abcf.example.com").hexdigest()
    assert len(SALT) == 44 and vq.cookie(SALT, FACTORY).islower()
    with pytest.raises(ValueError):
        vq.make_salt(b"short")


def test_site_and_vo():
    assert vq.site_name("vac01.example.com") == "example.com"
    assert vq.site_name("vacspace") == "vacspace"
    assert vq.site_name("vac01.example.com", "UKI-SITE") == "UKI-SITE"
    assert vq.vo_of_fqan("/lhcb/Role=NULL") == "lhcb"


@pytest.mark.parametrize("mtype", sorted(vq.REQUEST_TYPES))
def test_request_golden_and_round_trip(mtype, golden):
    msg = vq.request_dict(mtype, SPACE, vq.cookie(SALT, FACTORY), "04.00.00", "vac-command")
    golden.check(_pretty(msg), f"vacquery/{mtype}.json")
    req = vq.decode_request(vq.encode(msg))
    assert (req.message_type, req.space, req.cookie) == (mtype, SPACE, msg["cookie"])
    assert req.reply_type == vq.REQUEST_TYPES[mtype][1]


def test_request_fields():
    machines = vq.request_dict(vq.MACHINES_QUERY, SPACE, "c", "1.0", "vac-command")
    assert machines["method"] == "machines" and machines["vac_version"] == "Vac 1.0 vac-command"
    assert "method" not in vq.request_dict(vq.MACHINETYPES_QUERY, SPACE, "c", "1.0")
    factory = vq.request_dict(vq.FACTORY_QUERY, SPACE, "c", "1.0", "vac-command")
    assert factory["vac_version"] == "Vac 1.0" and factory["method"] == "factories"
    assert machines["vacquery_version"] == "VacQuery 01.03"


@pytest.mark.parametrize("method,canonical", sorted(vq.LEGACY_METHODS.items()))
def test_legacy_method_requests(method, canonical, golden):
    msg = {"vac_version": "Vac 00.20 -", "space": SPACE, "cookie": "abc", "method": method}
    golden.check(_pretty(msg), f"vacquery/legacy_{method}.json")
    assert vq.decode_request(vq.encode(msg)).message_type == canonical


@pytest.mark.parametrize("data,why", [
    (b"", "JSON"), (b"\xff\xfe", "UTF-8"), (b"[1,2]", "object"), (b"{}", "neither"),
    (b'{"message_type":"x","space":"s","cookie":"c"}', "unknown message_type"),
    (b'{"method":"scan","space":"s","cookie":"c"}', "unknown method"),
    (b'{"method":["machines"],"space":"s","cookie":"c"}', "strings"),
    (b'{"message_type":"factory_query","cookie":"c"}', "space"),
    (b'{"message_type":"factory_query","space":"s","cookie":7}', "cookie"),
    (b'{"message_type":"factory_query","space":"s","cookie":"c","vac_version":1}', "strings"),
    (b'{"message_type":"factory_query","space":"s","cookie":"' + b"x" * 1100 + b'"}',
     "exceeds"),
    (b"[" * 1000, "JSON"), (b"{\"a\":" * 200, "JSON"),
])
def test_malformed_requests_rejected(data, why):
    req, error = vq.parse_request(data)
    assert req is None and why in error
    with pytest.raises(ProtocolError):
        vq.decode_request(data)


@pytest.mark.parametrize("mtype", sorted(vq.BODY_FIELDS))
def test_response_golden_round_trip_and_schema(mtype, golden):
    msg = make_response(mtype)
    golden.check(_pretty(msg), f"vacquery/{mtype}.json")
    assert vq.validate_response(msg, strict=True) == []
    decoded = vq.decode_response(vq.encode(msg), strict=True)
    assert decoded == msg
    assert vq.reply_matches(decoded, mtype, SPACE, SALT) is None
    assert msg["vac_version"] == msg["daemon_version"] == "Vac 04.00.00 -"
    expected = set(vq.COMMON_FIELDS) | set(vq.BODY_FIELDS[mtype])
    assert expected <= set(msg)


@pytest.mark.parametrize("mtype", sorted(vq.BODY_FIELDS))
def test_golden_fixtures_decode(mtype):
    import os
    from tests.conftest import GOLDEN_DIR
    with open(os.path.join(GOLDEN_DIR, "vacquery", mtype + ".json"), "rb") as f:
        reply = vq.decode_response(f.read(), strict=True)
    assert reply["message_type"] == mtype


def test_reply_mismatches():
    msg = make_response(vq.MACHINETYPE_STATUS)
    assert "message_type" in vq.reply_matches(msg, vq.MACHINE_STATUS, SPACE, SALT)
    assert "space" in vq.reply_matches(msg, vq.MACHINETYPE_STATUS, "other.space", SALT)
    assert "cookie" in vq.reply_matches(msg, vq.MACHINETYPE_STATUS, SPACE, "othersalt")
    forged = dict(msg, factory="evil.example.com")
    assert "cookie" in vq.reply_matches(forged, vq.MACHINETYPE_STATUS, SPACE, SALT)


@pytest.mark.parametrize("mtype,key,value", [
    (vq.MACHINE_STATUS, "num_machines", "2"), (vq.MACHINE_STATUS, "cpu_seconds", 1.5),
    (vq.MACHINE_STATUS, "state", None), (vq.MACHINETYPE_STATUS, "running_hs06", "1"),
    (vq.MACHINETYPE_STATUS, "num_before_fizzle", True),
    (vq.FACTORY_STATUS, "load_average", [1]), (vq.FACTORY_STATUS, "factory", 5),
])
def test_wrong_types_rejected(mtype, key, value):
    msg = dict(make_response(mtype), **{key: value})
    reply, error = vq.parse_response(vq.encode(msg))
    assert reply is None and key in error


def test_lenient_client_accepts_minimal_legacy_reply():
    minimal = {"message_type": "factory_status", "factory": FACTORY, "space": SPACE,
               "cookie": vq.cookie(SALT, FACTORY)}
    assert vq.parse_response(vq.encode(minimal))[1] is None
    assert vq.parse_response(vq.encode(minimal), strict=True)[0] is None
    partial = dict(make_response(vq.MACHINE_STATUS))
    del partial["hs06"]
    reply, error = vq.parse_response(vq.encode(partial))
    assert reply is None and "missing hs06" in error


def test_floats_accept_ints_and_ints_reject_floats():
    msg = dict(make_response(vq.MACHINE_STATUS), hs06=20, cpu_percentage=0)
    assert vq.validate_response(msg) == []
    assert vq.validate_response(dict(msg, created_time=1.5))
