"""user_data template processing (SPEC §5.2, PEERS-AND-STANDARDS §3.4): a pure function.

Every ``##user_data_NAME##`` token of the template is replaced in ONE pass (a value that
is inserted is never scanned again, so a site file containing such a token is delivered
verbatim). NAME is looked up in this order:

1. the fixed patterns (space, machinetype, machine_hostname, manager_version,
   manager_hostname, MJF/JOBOUTPUTS URLs for the machine model, root_image_url, uuid,
   machine_token) and their deprecated aliases (vmtype, vm_hostname, vmlm_version,
   vmlm_hostname);
2. ``url`` - only when the template itself was fetched from an http(s) URL;
3. ``option_x509_proxy`` - the proxy made for ``user_data_proxy = true``, and
   ``option_wlcg_token`` - the content of the machinetype's ``wlcg_token_file``;
4. ``option_X`` - ``user_data_option_X``; if there is none, the content of
   ``user_data_file_X`` (precedence: OPTION BEFORE FILE);
5. ``file_X`` - the content of ``user_data_file_X`` (deprecated form).

Any other ``##user_data_[a-z0-9_,]*##`` token is removed (the clean-up of the original).
Templates may be gzip-compressed (µCernVM accepts compressed user data; we deliver the
expanded text so every consumer can read it).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, Mapping, Optional

from vac.constants import JOBFEATURES_URL, JOBOUTPUTS_URL, MACHINEFEATURES_URL
from vac.errors import VacError
from vac.machinemodels import machine_model

TOKEN_RE = re.compile(rb"##user_data_([a-z0-9_,]*)##")
GZIP_MAGIC = b"\x1f\x8b"
MAX_TEMPLATE_BYTES = 16 * 1024 * 1024   # expanded size limit (bytes) for gzip templates

_EMPTY: Mapping[str, str] = MappingProxyType({})

# MJF/JOBOUTPUTS over HTTP: (machinefeatures, jobfeatures, joboutputs)
_VM_URLS = (MACHINEFEATURES_URL, JOBFEATURES_URL, JOBOUTPUTS_URL)


class UserDataError(VacError):
    """A user_data template cannot be read, expanded or filled in."""


@dataclass(frozen=True)
class UserDataContext:
    """Everything the template may refer to for one machine.

    ``options`` maps X of ``user_data_option_X`` to its value; ``files`` maps X of
    ``user_data_file_X`` to the file's CONTENT (read by the service layer).
    """

    space: str
    machinetype: str
    machine_hostname: str
    manager_version: str          # e.g. "Vac 04.00.00"
    manager_hostname: str         # factory FQDN
    machine_model: str = "cernvm3"
    uuid: str = ""                # the machine UUID (job_id); B5: known before templating
    template_url: Optional[str] = None    # set only if the template came from http(s)
    root_image: Optional[str] = None
    x509_proxy: Optional[str] = None      # PEM text when user_data_proxy is true
    machine_token: str = ""               # the machine's own secret (JOBOUTPUTS, metadata)
    wlcg_token: Optional[str] = None      # content of wlcg_token_file, if the machinetype has one
    options: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    files: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


def mjf_locations(model_name: str) -> tuple:
    """(machinefeatures, jobfeatures, joboutputs) for a machine model: the paths inside
    the machine where the registry (vac.machinemodels) gives them, else the HTTP URLs."""
    model = machine_model(model_name)
    return model.mjf_paths if model is not None and model.mjf_paths else _VM_URLS


def _is_http_url(value: Optional[str]) -> bool:
    return bool(value) and value.startswith(("http://", "https://"))


def substitutions(ctx: UserDataContext) -> Dict[str, str]:
    """NAME (of ``##user_data_NAME##``) -> value, with the precedence of the module doc."""
    mf, jf, jo = mjf_locations(ctx.machine_model)
    values: Dict[str, str] = {}
    for name, content in ctx.files.items():
        values["file_" + name] = content
        values["option_" + name] = content
    for name, value in ctx.options.items():
        values["option_" + name] = value          # option before file
    if ctx.x509_proxy is not None:
        values["option_x509_proxy"] = ctx.x509_proxy
    if ctx.wlcg_token is not None:
        values["option_wlcg_token"] = ctx.wlcg_token
    if _is_http_url(ctx.template_url):
        values["url"] = ctx.template_url
    if _is_http_url(ctx.root_image):
        values["root_image_url"] = ctx.root_image
    values.update({
        "space": ctx.space,
        "machinetype": ctx.machinetype,
        "machine_hostname": ctx.machine_hostname,
        "manager_version": ctx.manager_version,
        "manager_hostname": ctx.manager_hostname,
        "machinefeatures_url": mf,
        "jobfeatures_url": jf,
        "joboutputs_url": jo,
        "uuid": ctx.uuid,
        "machine_token": ctx.machine_token,
        "vmtype": ctx.machinetype,
        "vm_hostname": ctx.machine_hostname,
        "vmlm_version": ctx.manager_version,
        "vmlm_hostname": ctx.manager_hostname,
    })
    return values


def expand_template(data: bytes, max_bytes: int = MAX_TEMPLATE_BYTES) -> bytes:
    """The template bytes, gunzipped if they are gzip-compressed (at most ``max_bytes``)."""
    if not data.startswith(GZIP_MAGIC):
        return data
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise UserDataError(f"gzip-compressed user_data template is corrupt: {e}") from e
    if len(out) > max_bytes:
        raise UserDataError(f"user_data template expands to more than {max_bytes} bytes")
    return out


def render_user_data(template: bytes, ctx: UserDataContext) -> bytes:
    """The final user_data for one machine from the (possibly gzipped) template bytes."""
    text = expand_template(template)
    values = {k.encode(): v.encode("utf-8", "surrogateescape")
              for k, v in substitutions(ctx).items()}
    return TOKEN_RE.sub(lambda m: values.get(m.group(1), b""), text)
