"""Metadata service answers (SPEC §5.1, checklist rows 91, 92, 101)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vac.core.metadata import MachineFacts, metadata_response, normalise

KEY = "ssh-rsa AAAAB3NzaC1yc2E root@factory1"
FACTS = MachineFacts(name="factory1-05.example.com", uuid="0b6c-uuid",
                     machinetype="lhcb-prod", factory_hostname="factory1.example.com",
                     ip="169.254.169.5", mac="56:4D:A9:FE:A9:05", user_data=b"#!/bin/sh\n",
                     public_key=KEY)


def get(path, facts=FACTS):
    return metadata_response("GET", path, facts)


@pytest.mark.parametrize("ver", ["latest", "2009-04-04", "2016-09-02", "2021-03-23"])
def test_ec2_leaves(ver):
    assert get(f"/{ver}/user-data").body == b"#!/bin/sh\n"
    assert get(f"/{ver}/meta-data/instance-id").body == b"0b6c-uuid"
    assert get(f"/{ver}/meta-data/ami-id").body == b"0b6c-uuid"
    assert get(f"/{ver}/meta-data/local-hostname").body == b"factory1-05.example.com"
    assert get(f"/{ver}/meta-data/hostname").body == b"factory1-05.example.com"
    assert get(f"/{ver}/meta-data/local-ipv4").body == b"169.254.169.5"
    assert get(f"/{ver}/meta-data/instance-type").body == b"lhcb-prod"
    assert get(f"/{ver}/meta-data/public-keys/0/openssh-key").body == KEY.encode()
    assert get(f"/{ver}/meta-data/placement/availability-zone").body == \
        b"factory1.example.com"


def test_version_list_and_listings(golden):
    root = get("/")
    assert b"2009-04-04\n" in root.body and root.body.endswith(b"latest\n")
    with_slash, without = get("/latest/meta-data/"), get("/latest/meta-data")
    assert with_slash == without and with_slash.status == 200
    golden.check(with_slash.body, "metadata/ec2-meta-data-listing.txt")
    assert get("/latest/meta-data/public-keys/").body == b"0=vac\n"
    assert get("/latest/meta-data/public-keys/0/").body == b"openssh-key\n"
    assert get("/latest/meta-data/placement/").body == b"availability-zone\n"
    assert get("/2009-04-04/").body == b"meta-data\nuser-data\n"


def test_openstack_tree(golden):
    assert b"2012-08-10\n" in get("/openstack").body
    assert get("/openstack/").body.endswith(b"latest\n")
    assert get("/openstack/latest/").body == (b"meta_data.json\nnetwork_data.json\n"
                                              b"user_data\nvendor_data.json\n"
                                              b"vendor_data2.json\n")
    md = get("/openstack/2012-08-10/meta_data.json")
    assert md.content_type == "application/json"
    golden.check(md.body, "metadata/openstack-meta_data.json")
    data = json.loads(md.body)
    assert data["uuid"] == "0b6c-uuid" and data["hostname"] == "factory1-05.example.com"
    assert data["public_keys"] == {"vac": KEY} and data["launch_index"] == 0
    assert data["meta"]["joboutputs"] == "http://169.254.169.253/joboutputs"
    assert get("/openstack/latest/user_data").body == b"#!/bin/sh\n"
    assert json.loads(get("/openstack/latest/vendor_data.json").body) == {}
    assert json.loads(get("/openstack/latest/vendor_data2.json").body) == {}
    net = json.loads(get("/openstack/latest/network_data.json").body)
    assert net["links"][0]["ethernet_mac_address"] == "56:4d:a9:fe:a9:05"


def test_original_vac_spellings(golden):
    for path in ("/latest/meta-data.json", "/openstack/2016-06-30/meta-data.json"):
        data = json.loads(get(path).body)
        assert data["public_keys"] == {"0": KEY}
        assert data["name"] == "factory1-05.example.com"
        assert data["meta"]["machinetype"] == "lhcb-prod"
    golden.check(get("/latest/meta-data.json").body, "metadata/vac-meta-data.json")
    assert get("/openstack/latest/user-data").body == b"#!/bin/sh\n"
    assert get("/openstack/latest/meta-data/ami-id").body == b"0b6c-uuid"
    assert get("//latest//meta-data//instance-id").body == b"0b6c-uuid"


def test_without_key_and_user_data():
    bare = MachineFacts(name="n", uuid="u", machinetype="m", factory_hostname="f",
                        ip="169.254.169.1", mac="56:4D:A9:FE:A9:01")
    assert get("/latest/user-data", bare).status == 404
    assert get("/openstack/latest/user_data", bare).status == 404
    assert get("/latest/meta-data/public-keys/0/openssh-key", bare).status == 404
    assert b"public-keys" not in get("/latest/meta-data/", bare).body
    assert json.loads(get("/latest/meta-data.json", bare).body)["public_keys"] == {}


def test_vac_tree_serves_the_machines_secrets():
    facts = dataclasses.replace(FACTS, machine_token="tok", wlcg_token="jwt")
    assert get("/vac/machine_token", facts).body == b"tok"
    assert get("//vac//wlcg_token", facts).body == b"jwt"
    assert get("/vac/", facts).body == b"machine_token\nwlcg_token\n"
    assert get("/vac", FACTS).body == b""
    for path in ("/vac/machine_token", "/vac/wlcg_token", "/vac/other", "/vac/machine_token/"):
        assert get(path).status == 404, path
    assert b"tok" not in get("/openstack/latest/meta_data.json", facts).body


@pytest.mark.parametrize("path", [
    "/nonsense", "/latest/foo", "/latest/meta-data/foo", "/2009-4-4/user-data",
    "/latest/../latest/user-data", "/latest/meta-data/ami-id/", "/openstack/x/meta_data.json",
    "/openstack/latest/nothing", "relative", "/" + "a" * 2000, "/latest/meta_data.json"])
def test_unknown_paths_404(path):
    r = get(path)
    assert (r.status, r.body) == (404, b"")


def test_methods_and_query_strings():
    assert metadata_response("POST", "/latest/user-data", FACTS).status == 405
    assert metadata_response("PUT", "/", FACTS).status == 405
    assert metadata_response("HEAD", "/latest/user-data", FACTS).status == 200
    assert get("/latest/meta-data/instance-id?x=1").body == b"0b6c-uuid"
    assert normalise("/a/./b") is None



@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="/.-_?%#az019lmtsdpjn", max_size=60),
       st.sampled_from(["GET", "HEAD", "PUT", "X"]))
def test_any_path_gives_a_valid_answer(path, method):
    r = metadata_response(method, path, FACTS)
    assert r.status in (200, 404, 405)
    if r.status != 200:
        assert r.body == b""


def test_config_drive_and_service_share_one_openstack_tree():
    """vac.core.metadata.openstack_documents is the one definition: the service lists
    and serves exactly its names and contents (the config drive writes the same)."""
    from vac.core.metadata import MachineFacts, metadata_response, openstack_documents
    f = MachineFacts(name="vm-00.example.com", uuid="u-1", machinetype="mt",
                     factory_hostname="example.com", ip="169.254.169.0",
                     mac="56:4d:a9:fe:a9:00", user_data=b"#!/bin/sh\n", public_key=None)
    documents = openstack_documents(f)
    listing = metadata_response("GET", "/openstack/latest/", f).body.decode().split()
    assert listing == sorted(documents)
    for name, content in documents.items():
        assert metadata_response("GET", f"/openstack/latest/{name}", f).body == content()
