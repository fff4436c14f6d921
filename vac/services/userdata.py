"""Build a machine's user_data (SPEC §5.2, §5.3); the config-2 drive is in configdrive.py.

Gathers the template (local file, the machinetype's ``files/`` directory or an http(s)
URL with a cache under the state directory), the proxy, the ``user_data_file_*``
contents, then calls the pure vac.core.userdata. Any failure raises UserDataError with
one clear line naming the machinetype and the file/URL.

``user_data_file_*`` files that contain a PRIVATE KEY must not be group/world readable
(the same rule as x509key.pem), nor may a machinetype's ``wlcg_token_file`` be readable or
writable by group or others. If fetching a URL template fails, the cached copy of an
earlier fetch is used (with a warning); without a cached copy creation fails.
"""

from __future__ import annotations

import logging
import os
import stat
import urllib.parse
from typing import Dict, Optional

from vac import __version__
from vac.adapters.atomicfile import write_atomic
from vac.core.configtypes import Config, Machinetype
from vac.core.userdata import UserDataContext, UserDataError, render_user_data
from vac.errors import CredentialError, FetchError
from vac.paths import Paths

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 30.0


def machinetype_path(paths: Paths, mt: Machinetype) -> str:
    """MACHINETYPE_PATH: ``machinetype_path`` or ``<state>/machinetypes/NAME``."""
    return paths.under_root(mt.machinetype_path) if mt.machinetype_path \
        else paths.machinetype_dir(mt.name)


def local_file(paths: Paths, mt: Machinetype, name: str) -> str:
    """An absolute path from the configuration, or ``MACHINETYPE_PATH/files/NAME``."""
    if os.path.isabs(name):
        return paths.under_root(name)
    return os.path.join(machinetype_path(paths, mt), "files", name)


def _read_file(path: str, what: str, mt: Machinetype) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        mode = os.stat(path).st_mode
    except OSError as e:
        raise UserDataError(f"Failed to read {what} {path} for machinetype {mt.name}: "
                            f"{e.strerror}") from e
    if len(data) > MAX_FILE_BYTES:
        raise UserDataError(f"{what} {path} is larger than {MAX_FILE_BYTES} bytes")
    if b"PRIVATE KEY" in data and mode & (stat.S_IRGRP | stat.S_IROTH):
        raise UserDataError(f"{what} {path} holds a private key but is readable by group "
                            f"or others (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    return data


def read_wlcg_token(paths: Paths, mt: Machinetype) -> Optional[str]:
    """The token in the machinetype's ``wlcg_token_file`` (surrounding white space removed),
    None if it has none. Raises UserDataError naming the file if it cannot be read, is
    readable or writable by group or others, is empty or larger than 64 KiB."""
    if not mt.wlcg_token_file:
        return None
    path = local_file(paths, mt, mt.wlcg_token_file)
    what = f"wlcg_token_file {path} of machinetype {mt.name}"
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UserDataError(f"{what} is readable or writable by group or others "
                                    f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it")
            data = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as e:
        raise UserDataError(f"Failed to read {what}: {e.strerror}") from e
    token = data.decode("utf-8", "replace").strip()
    if not token or len(data) > MAX_TOKEN_BYTES:
        raise UserDataError(f"{what} is empty or larger than {MAX_TOKEN_BYTES} bytes")
    return token


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def _fetch_template(paths: Paths, url: str) -> bytes:
    """GET the template (If-Modified-Since the cached copy); the cache is the fallback."""
    from vac.adapters.fetch import fetch
    cache_dir = paths.state("userdatacache")
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    cached = os.path.join(cache_dir, urllib.parse.quote(url, safe=""))
    ims = os.path.getmtime(cached) if os.path.exists(cached) else None
    ca_dir = paths.grid_security_certificates
    try:
        result = fetch(url, timeout=FETCH_TIMEOUT_SECONDS, user_agent=f"Vac {__version__}",
                       ca_dir=ca_dir if os.path.isdir(ca_dir) else None,
                       if_modified_since=ims, max_bytes=MAX_FILE_BYTES)
        if result.status == 200 and result.body is not None:
            write_atomic(cached, result.body)
            return result.body
    except FetchError as e:
        if ims is None:
            raise UserDataError(f"Failed to fetch user_data template {url}: {e}") from e
        log.warning("Failed to fetch user_data template %s (%s); using the cached copy",
                    url, e)
    with open(cached, "rb") as f:
        return f.read()


def _proxy(paths: Paths, mt: Machinetype, shutdown_time: int, now: float) -> Optional[str]:
    if not mt.user_data_proxy:
        return None
    from vac.adapters import credentials    # cryptography: only for user_data_proxy
    base = machinetype_path(paths, mt)
    try:
        return credentials.make_proxy(os.path.join(base, "x509cert.pem"),
                                      os.path.join(base, "x509key.pem"),
                                      expires=shutdown_time, now=now, cn=mt.name,
                                      legacy=mt.legacy_proxy)
    except CredentialError as e:
        raise UserDataError(f"Failed to make proxy for machinetype {mt.name} ({e})") from e


def _files(paths: Paths, mt: Machinetype) -> Dict[str, str]:
    return {name: _read_file(local_file(paths, mt, path), f"user_data_file_{name}",
                             mt).decode("utf-8", "surrogateescape")
            for name, path in sorted(mt.user_data_files.items())}


def make_user_data(cfg: Config, paths: Paths, machinetype: Machinetype, *, machine_name: str,
                   uuid: str, shutdown_time: int, now: float, machine_token: str = "") -> bytes:
    """The final user_data of one machine (raises UserDataError with a clear line)."""
    mt = machinetype
    if not mt.user_data:
        raise UserDataError(f"machinetype {mt.name} has no user_data option")
    if _is_url(mt.user_data):
        template, url = _fetch_template(paths, mt.user_data), mt.user_data
    else:
        template = _read_file(local_file(paths, mt, mt.user_data), "user_data template", mt)
        url = None
    ctx = UserDataContext(
        space=cfg.settings.vac_space, machinetype=mt.name, machine_hostname=machine_name,
        manager_version=f"Vac {__version__}",
        manager_hostname=cfg.settings.factory_hostname, machine_model=mt.machine_model,
        uuid=uuid, template_url=url, root_image=mt.root_image,
        x509_proxy=_proxy(paths, mt, shutdown_time, now), machine_token=machine_token,
        wlcg_token=read_wlcg_token(paths, mt),
        options=dict(mt.user_data_options), files=_files(paths, mt))
    return render_user_data(template, ctx)
