"""The metadata service's answers (SPEC §5.1, PEERS-AND-STANDARDS §2.5): a pure function.

``metadata_response(method, path, facts)`` -> ``Response(status, content_type, body)``
for three trees, all served from 169.254.169.254:

* EC2: ``/`` (API versions), ``/VER/user-data``, ``/VER/meta-data[/]`` and its leaves
  (ami-id, ami-launch-index, hostname, instance-id, instance-type, local-hostname,
  local-ipv4, placement/availability-zone, public-keys/0/openssh-key).
  VER is ``latest`` or any ``NNNN-NN-NN`` date (cloud-init asks for 2009-04-04 and later).
* OpenStack: ``/openstack[/]`` (versions), ``/openstack/VER[/]``, ``meta_data.json``,
  ``user_data``, ``vendor_data.json``, ``vendor_data2.json``, ``network_data.json``.
* The original Vac's spellings for old images: ``/VER/meta-data.json`` and, under
  ``/openstack/VER/``, ``meta-data.json``, ``user-data`` and the EC2 ``meta-data`` tree.
* vac's own: ``/vac/`` (listing), ``/vac/machine_token`` (the machine's secret, also in
  its user_data as ``##user_data_machine_token##``) and ``/vac/wlcg_token`` (the current
  content of its machinetype's ``wlcg_token_file``). Like everything here they are
  answered only to the machine itself (the source address picks the machine).

Everything else is 404 with an empty body; methods other than GET/HEAD are 405.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from vac.constants import JOBFEATURES_URL, JOBOUTPUTS_URL, MACHINEFEATURES_URL

EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
                "2007-12-15", "2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01",
                "2011-05-01", "2012-01-12", "2014-02-25", "2014-11-05", "2015-10-20",
                "2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28", "2018-08-17",
                "2018-09-24", "latest")
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15",
                      "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "latest")
_VERSION_RE = re.compile(r"^(latest|1\.0|\d{4}-\d{2}-\d{2})$")
MAX_PATH_CHARS = 1024
KEY_NAME = "vac"     # name of the single ssh key (public-keys/0=vac)


@dataclass(frozen=True)
class MachineFacts:
    """What the metadata service knows about the requesting machine."""

    name: str                    # machine FQDN
    uuid: str                    # machine UUID (= jobfeatures/job_id)
    machinetype: str
    factory_hostname: str        # also the availability zone
    ip: str
    mac: str
    user_data: Optional[bytes] = None
    public_key: Optional[str] = None
    launch_index: int = 0
    machine_token: Optional[str] = None
    wlcg_token: Optional[str] = None


@dataclass(frozen=True)
class Response:
    """An HTTP answer; ``headers``: extra (name, value) pairs, e.g. WWW-Authenticate."""

    status: int
    content_type: str = "text/plain"
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()


NOT_FOUND = Response(404)


def _ok(body, content_type: Optional[str] = None) -> Response:
    data = body.encode() if isinstance(body, str) else body
    if content_type is None:
        content_type = "text/html" if data.startswith(b"<html>") else "text/plain"
    return Response(200, content_type, data)


def _json(value) -> Response:
    return _ok(json.dumps(value, sort_keys=True), "application/json")


def _listing(names) -> Response:
    return _ok("".join(n + "\n" for n in names))


def normalise(path: str) -> Optional[str]:
    """Request path without query/fragment and with ``//`` collapsed; None if unsafe."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if len(path) > MAX_PATH_CHARS or not path.startswith("/"):
        return None
    while "//" in path:
        path = path.replace("//", "/")
    if "/." in path and any(part in (".", "..") for part in path.split("/")):
        return None         # ("/." is in every path with a "." or ".." part)
    return path


def openstack_meta_data(f: MachineFacts) -> Dict:
    """The OpenStack ``meta_data.json`` object (also the base of Vac's meta-data.json)."""
    data = {
        "uuid": f.uuid, "name": f.name, "hostname": f.name,
        "availability_zone": f.factory_hostname, "launch_index": f.launch_index,
        "project_id": "vac", "devices": [],
        "public_keys": {KEY_NAME: f.public_key} if f.public_key else {},
        "meta": {"machinefeatures": MACHINEFEATURES_URL, "jobfeatures": JOBFEATURES_URL,
                 "joboutputs": JOBOUTPUTS_URL, "machinetype": f.machinetype},
    }
    if f.public_key:
        data["keys"] = [{"name": KEY_NAME, "type": "ssh", "data": f.public_key}]
    return data


def vac_meta_data(f: MachineFacts) -> Dict:
    """The original Vac's ``meta-data.json`` (public_keys keyed by ``"0"``)."""
    data = {"availability_zone": f.factory_hostname, "hostname": f.name, "name": f.name,
            "meta": openstack_meta_data(f)["meta"]}
    if f.uuid:
        data["uuid"] = f.uuid
    data["public_keys"] = {"0": f.public_key} if f.public_key else {}
    return data


def network_data(f: MachineFacts) -> Dict:
    """OpenStack ``network_data.json``: one NIC configured by DHCP, the factory as DNS."""
    return {"links": [{"id": "vac0", "type": "phy", "ethernet_mac_address": f.mac.lower(),
                       "mtu": None}],
            "networks": [{"id": "network0", "link": "vac0", "type": "ipv4_dhcp",
                          "network_id": "vac"}],
            "services": [{"type": "dns", "address": "169.254.169.253"}]}


def _ec2_leaves(f: MachineFacts) -> Dict[str, Callable[[], Response]]:
    leaves = {
        "ami-id": lambda: _ok(f.uuid), "instance-id": lambda: _ok(f.uuid),
        "ami-launch-index": lambda: _ok(str(f.launch_index)),
        "hostname": lambda: _ok(f.name), "local-hostname": lambda: _ok(f.name),
        "local-ipv4": lambda: _ok(f.ip), "instance-type": lambda: _ok(f.machinetype),
        "placement": lambda: _listing(["availability-zone"]),
        "placement/availability-zone": lambda: _ok(f.factory_hostname),
    }
    if f.public_key:
        leaves.update({
            "public-keys": lambda: _listing([f"0={KEY_NAME}"]),
            "public-keys/0": lambda: _listing(["openssh-key"]),
            "public-keys/0/openssh-key": lambda: _ok(f.public_key),
        })
    return leaves


def _ec2_meta_data(rest: str, f: MachineFacts) -> Response:
    """``meta-data`` tree; ``rest`` is the path below ``meta-data`` (may be empty)."""
    leaves = _ec2_leaves(f)
    key = rest.strip("/")
    if not key:
        names = sorted(n for n in leaves if "/" not in n)
        return _listing(n + "/" if n in ("placement", "public-keys") else n for n in names)
    if rest.endswith("/") and key not in ("placement", "public-keys", "public-keys/0"):
        return NOT_FOUND
    handler = leaves.get(key)
    return handler() if handler else NOT_FOUND


def _user_data(f: MachineFacts) -> Response:
    return Response(200, "text/plain", f.user_data) if f.user_data is not None else NOT_FOUND


def _ec2_tree(rest: str, f: MachineFacts, openstack_prefix: bool) -> Response:
    """Below ``/VER/`` of the EC2 tree (or the original's ``/openstack/VER/``)."""
    if rest == "user-data":
        return _user_data(f)
    if rest == "meta-data.json":
        return _json(vac_meta_data(f))
    if rest == "meta-data" or rest.startswith("meta-data/"):
        return _ec2_meta_data(rest[len("meta-data"):], f)
    if rest == "" and not openstack_prefix:
        names = ["meta-data"] + (["user-data"] if f.user_data is not None else [])
        return _listing(names)
    return NOT_FOUND


def _dump(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def openstack_documents(f: MachineFacts) -> Dict[str, Callable[[], bytes]]:
    """The OpenStack tree below ``openstack/VERSION/``: file name -> its content (made
    when asked). The one definition of that tree: the metadata service serves it and
    the config drive (vac.services.configdrive) writes it below ``openstack/latest/``."""
    documents: Dict[str, Callable[[], bytes]] = {
        "meta_data.json": lambda: _dump(openstack_meta_data(f)),
        "network_data.json": lambda: _dump(network_data(f)),
        "vendor_data.json": lambda: b"{}",
        "vendor_data2.json": lambda: b"{}",
    }
    if f.user_data is not None:
        documents["user_data"] = lambda: f.user_data
    return documents


def _openstack_tree(rest: str, f: MachineFacts) -> Response:
    """Below ``/openstack/VER/``: the real names first, then the original's spellings."""
    documents = openstack_documents(f)
    if rest == "":
        return _listing(sorted(documents))
    if rest == "user_data":
        return _user_data(f)
    if rest in documents:
        return _ok(documents[rest](), "application/json")
    return _ec2_tree(rest, f, openstack_prefix=True)


def _vac_tree(rest: str, f: MachineFacts) -> Response:
    """Below ``/vac/``: the machine's secrets, each 404 when it has none."""
    secrets = {"machine_token": f.machine_token, "wlcg_token": f.wlcg_token}
    if rest == "":
        return _listing(sorted(k for k, v in secrets.items() if v is not None))
    value = secrets.get(rest)
    return _ok(value) if value is not None else NOT_FOUND


def metadata_response(method: str, path: str, facts: MachineFacts) -> Response:
    """The answer to ``method path`` from the machine described by ``facts``."""
    if method not in ("GET", "HEAD"):
        return Response(405)
    norm = normalise(path)
    if norm is None:
        return NOT_FOUND
    parts = norm[1:].split("/", 1)
    if parts[0] == "":
        return _listing(EC2_VERSIONS)
    if parts[0] == "vac":
        return _vac_tree(parts[1] if len(parts) > 1 else "", facts)
    if parts[0] == "openstack":
        below = parts[1] if len(parts) > 1 else ""
        if below == "":
            return _listing(OPENSTACK_VERSIONS)
        version, _, rest = below.partition("/")
        if not _VERSION_RE.match(version):
            return NOT_FOUND
        return _openstack_tree(rest, facts)
    if not _VERSION_RE.match(parts[0]):
        return NOT_FOUND
    return _ec2_tree(parts[1] if len(parts) > 1 else "", facts, openstack_prefix=False)
