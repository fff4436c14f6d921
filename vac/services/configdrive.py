"""The optional ``config-2`` drive (PEERS-AND-STANDARDS §2.5): the OpenStack tree on an
ISO9660 volume for images without network metadata (machinetype ``config_drive = true``).

Holds ``openstack/latest/{meta_data.json,network_data.json,vendor_data.json,
vendor_data2.json,user_data}`` with the same content the metadata service serves; cloud-init's
ConfigDrive datasource and µCernVM's ``configdrive`` source read it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Optional

from vac.adapters import contextfiles, runner
from vac.core import naming
from vac.core.configtypes import Config, Machinetype
from vac.core.metadata import MachineFacts, openstack_documents
from vac.core.userdata import UserDataError
from vac.errors import CommandError
from vac.paths import Paths

MAX_USER_DATA = 64 * 1024 * 1024      # bytes of user_data put on the drive (as the service)

CONFIG_DRIVE_LABEL = "config-2"
ISO_NAME = "config-drive.iso"


def _public_key(paths: Paths, cfg: Config) -> Optional[str]:
    try:
        with open(paths.under_root(cfg.settings.root_public_key)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def config_drive_files(cfg: Config, paths: Paths, machinetype: Machinetype, *,
                       machine_name: str, uuid: str, ordinal: int,
                       user_data: Optional[bytes]) -> Dict[str, bytes]:
    """Relative path -> content of the ``config-2`` drive (openstack/latest/...)."""
    facts = MachineFacts(name=machine_name, uuid=uuid, machinetype=machinetype.name,
                         factory_hostname=cfg.settings.factory_hostname,
                         ip=naming.machine_ip(ordinal), mac=naming.machine_mac(ordinal),
                         user_data=user_data, public_key=_public_key(paths, cfg))
    return {f"openstack/latest/{name}": content()
            for name, content in openstack_documents(facts).items()}


def make_config_drive(cfg: Config, paths: Paths, machinetype: Machinetype, *,
                      machine_name: str, uuid: str, ordinal: int,
                      user_data: Optional[bytes], dest_path: str) -> str:
    """Write an ISO9660 volume labelled ``config-2`` to ``dest_path`` (genisoimage), mode
    0600 from the start: its user_data may hold the machine token or other secrets."""
    os.makedirs(paths.tmp, mode=0o755, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="configdrive-", dir=paths.tmp)
    try:
        os.close(os.open(dest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        os.chmod(dest_path, 0o600)            # an older file may have had another mode
        for rel, content in config_drive_files(cfg, paths, machinetype,
                                               machine_name=machine_name, uuid=uuid,
                                               ordinal=ordinal, user_data=user_data).items():
            path = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        runner.run(["genisoimage", "-quiet", "-output", dest_path, "-volid",
                    CONFIG_DRIVE_LABEL, "-joliet", "-rock", "-input-charset", "utf-8",
                    staging], timeout=60)
    except (OSError, CommandError) as e:
        raise UserDataError(f"Failed to make config drive for {machine_name}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest_path


def build_config_drive(cfg: Config, paths: Paths, machinetype: Machinetype, *,
                       machine_name: str, machine_dir: str) -> str:
    """The factory's hook: ISO from the machine directory (job_id, user_data) -> its path."""
    ordinal = naming.ordinal_from_name(cfg.settings.factory_hostname, machine_name)
    if ordinal is None:
        raise UserDataError(f"{machine_name} is not a slot of {cfg.settings.factory_hostname}")
    return make_config_drive(cfg, paths, machinetype, machine_name=machine_name,
                             uuid=contextfiles.read_job_id(machine_dir), ordinal=ordinal,
                             user_data=contextfiles.read_user_data(machine_dir, MAX_USER_DATA),
                             dest_path=os.path.join(machine_dir, ISO_NAME))
