"""The shipped ssmsend set-up: ssm 4.0 AMS sender config, cron template and its installer."""

from __future__ import annotations

import configparser
import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "vac-ssmsend-cron")
TEMPLATE = os.path.join(REPO, "etc", "cron.d", "vac-ssmsend.in")


def _install(root, *extra):
    return subprocess.run([SCRIPT, "--root", str(root), "--template", TEMPLATE, *extra],
                          capture_output=True, text=True, timeout=30)


def _entries(root):
    with open(os.path.join(str(root), "etc", "cron.d", "vac-ssmsend")) as f:
        return [line.split() for line in f if re.match(r"^[0-9@]", line)]


def test_sender_config_is_ssm4_ams_over_the_vac_queue():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "etc", "apel", "vac-ssmsend-prod.cfg"))
    assert cfg["sender"]["protocol"] == "AMS"
    assert cfg["broker"]["host"] == "msg.argo.grnet.gr" and cfg["broker"]["port"] == "443"
    assert cfg["messaging"]["ams_project"] == "accounting"
    assert cfg["messaging"]["destination"] == "gLite-APEL"
    assert cfg["messaging"]["path"] == "/var/lib/vac/apel-outgoing"
    assert cfg["messaging"]["path_type"] == "dirq"
    assert cfg["certificates"]["certificate"] == "/etc/grid-security/vac-apel-cert.pem"
    assert cfg["certificates"]["key"] == "/etc/grid-security/vac-apel-key.pem"
    assert cfg["logging"]["logfile"] == "/var/log/vac-ssmsend-prod"
    assert "bdii" not in cfg["broker"]


def test_cron_file_gets_a_random_minute_that_survives_reinstall(tmp_path):
    assert _install(tmp_path).returncode == 0
    send, sync = _entries(tmp_path)
    assert 0 <= int(send[0]) <= 59 and send[1:5] == ["*", "*", "*", "*"] and send[5] == "root"
    assert "ssmsend -c /etc/apel/vac-ssmsend-prod.cfg" in " ".join(send)
    assert sync[:6] == ["0", "12", "*", "*", "*", "root"]
    assert "/usr/sbin/vac apel-sync" in " ".join(sync)
    assert all(">>/var/log/vac-ssmsend" in " ".join(e) for e in (send, sync))
    assert _install(tmp_path).returncode == 0
    assert _entries(tmp_path)[0][0] == send[0]
    mode = os.stat(os.path.join(str(tmp_path), "etc", "cron.d", "vac-ssmsend")).st_mode
    assert mode & 0o777 == 0o644


def test_cron_installer_rejects_bad_minute(tmp_path):
    assert _install(tmp_path, "--minute", "17").returncode == 0
    assert _entries(tmp_path)[0][0] == "17"
    result = _install(tmp_path, "--minute", "60")
    assert result.returncode == 1 and "0-59" in result.stderr
