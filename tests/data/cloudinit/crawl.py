"""Run Debian's UNMODIFIED cloud-init datasources against a metadata URL; print JSON.

Usage (system python, where the cloud-init package lives):
    /usr/bin/python3 crawl.py ec2|openstack METADATA_URL WORKDIR
    /usr/bin/python3 crawl.py configdrive - WORKDIR   (drive content in WORKDIR/cloud/seed/config_drive)
"""

import json
import sys

from cloudinit import distros, helpers
from cloudinit.sources import DataSourceConfigDrive, DataSourceEc2, DataSourceOpenStack


def main():
    kind, url, workdir = sys.argv[1:4]
    paths = helpers.Paths({"cloud_dir": workdir + "/cloud", "run_dir": workdir + "/run"})
    distro = distros.fetch("debian")("debian", {}, paths)
    ds_cfg = {"metadata_urls": [url], "max_wait": 20, "timeout": 5, "retries": 2}
    if kind == "ec2":
        sys_cfg = {"datasource": {"Ec2": dict(ds_cfg, strict_id="warn")},
                   "datasource_list": ["Ec2"]}
        ds = DataSourceEc2.DataSourceEc2(sys_cfg, distro, paths)
    elif kind == "configdrive":
        sys_cfg = {"datasource_list": ["ConfigDrive"]}
        ds = DataSourceConfigDrive.DataSourceConfigDrive(sys_cfg, distro, paths)
    else:
        sys_cfg = {"datasource": {"OpenStack": ds_cfg}, "datasource_list": ["OpenStack"]}
        ds = DataSourceOpenStack.DataSourceOpenStack(sys_cfg, distro, paths)
    ok = ds.get_data()
    userdata = ds.get_userdata_raw() if ok else None
    if isinstance(userdata, bytes):
        userdata = userdata.decode()
    print(json.dumps({
        "ok": ok, "datasource": str(ds),
        "instance_id": ds.get_instance_id() if ok else None,
        "local_hostname": ds.get_hostname().hostname if ok else None,
        "userdata": userdata,
        "public_keys": ds.get_public_ssh_keys() if ok else None,
        "availability_zone": ds.availability_zone if ok else None,
    }))


if __name__ == "__main__":
    main()
