"""Every option of SPEC §1.4-1.6: its default and a bad value (table-driven, checklist 5, 16)."""

from __future__ import annotations

import dataclasses

import pytest

from vac.core import options as o
from vac.core import schema
from vac.core.config import parse_config
from vac.core.configtypes import Machinetype, Settings
from vac.errors import ConfigError

HOST = "factory1.example.com"
BASE = "[settings]\nvac_space = vac01.example.com\n[machinetype mt]\nroot_image = image.iso\n"

BAD_SETTINGS = {
    "vac_space": "notqualified", "factories": "bad_name!", "gocdb_sitename": "two words",
    "gocdb_cert_file": "relative.pem", "gocdb_key_file": "relative.pem",
    "total_processors": "0", "overload_per_processor": "-1", "singularity_user": "two words",
    "volume_group": "-vg", "disk_gb_per_processor": "-5", "udp_timeout_seconds": "soon",
    "fix_networking": "perhaps", "root_public_key": "id_rsa.pub", "forward_dev": "eth 0",
    "version_logger": "often", "version_logger_hostport": "nohostport",
    "vacmon_hostport": "mon.example.org", "processors_per_superslot": "0",
    "mb_per_processor": "2GB", "shutdown_time": "tomorrow", "draining": "maybe",
    "hs06_per_processor": "0", "factory_hostname": "shortname", "libvirt_uri": "system",
    "domain_type": "xen", "cycle_seconds": "0", "max_creations_per_cycle": "0",
    "share_half_life_seconds": "-1", "fast_cycle_seconds": "x",
    "apel_message_version": "0.5", "log_destination": "syslog", "vacquery_port": "0",
    "responder_bind_address": "localhost", "query_allowed_sources": "10.0.0.0/33 x",
    "query_key_file": "relative/key", "query_unkeyed_sources": "monitor.example.org",
    "metadata_bind_address": "1.2.3",
    "metadata_port": "65536", "mjf_bind_address": "x", "mjf_port": "-1",
    "joboutputs_max_file_bytes": "0", "joboutputs_max_total_bytes": "lots",
    "joboutputs_max_files": "0", "subspace_min_factories": "-1", "subspace_size": "x",
    "shutdown_grace_seconds": "-1", "check_iptables": "sometimes",
    "metrics_address": "127.0.0.1",
    "manage_iptables": "sometimes", "host_tcp_ports_for_machines": "3128 squid",
}
BAD_MACHINETYPE = {
    "target_share": "-1", "machine_model": "xen", "root_image": "", "user_data": "",
    "user_data_proxy": "maybe", "legacy_proxy": "maybe", "min_processors": "0",
    "max_processors": "0", "max_wallclock_seconds": "0", "min_wallclock_seconds": "-1",
    "backoff_seconds": "-1", "fizzle_seconds": "ten", "heartbeat_file": "../heartbeat",
    "heartbeat_seconds": "-1", "accounting_fqan": "lhcb", "machinegroup": "two words",
    "machines_dir_days": "three", "disk_gb_per_processor": "1.5", "root_device": "sd-a",
    "scratch_device": "vd_b", "image_signing_dn": "(", "container_command": "",
    "tmp_binds": "relative", "cvmfs_repositories": "a/b", "machinetype_path": "relative",
    "hepscore23_per_processor": "0", "config_drive": "maybe", "guest_to_guest": "maybe",
    "priority": "high", "preemptible": "maybe", "preemption_grace_seconds": "-5",
    "joboutputs_require_token": "maybe", "wlcg_token_file": "",
}
BAD_VACUUM_PIPE = {"vacuum_pipe_url": "ftp://example.org/x", "target_share": "-1"}
FREE_TEXT = {"description"}   # any text is valid


def load(text, **kw):
    return parse_config([("vac.conf", text)], hostname=kw.pop("hostname", HOST),
                        processor_count=kw.pop("processor_count", 8), **kw)


def problems_of(text, **kw):
    """Every problem: of an invalid configuration, or of its disabled machinetypes."""
    try:
        cfg = load(text, **kw)
    except ConfigError as e:
        return [str(p) for p in e.problems]
    assert cfg.disabled, "expected problems"
    return list(cfg.problems)


def test_every_option_has_a_bad_value_row():
    for kind, table in ((schema.SETTINGS_OPTIONS, BAD_SETTINGS),
                        (schema.MACHINETYPE_OPTIONS, BAD_MACHINETYPE),
                        (schema.VACUUM_PIPE_OPTIONS, BAD_VACUUM_PIPE)):
        names = {opt.name for opt in kind}
        missing = names - set(table) - FREE_TEXT
        assert not missing, f"add bad values for {missing} to tests/core/test_config_options.py"
        assert not set(table) - names
    assert {opt.name for opt in schema.SETTINGS_OPTIONS if opt.convert is o.text} == FREE_TEXT


@pytest.mark.parametrize("option", schema.SETTINGS_OPTIONS, ids=lambda opt: opt.name)
def test_settings_default(option):
    settings = load(BASE).settings
    expected = {"vac_space": "vac01.example.com", "factory_hostname": HOST}.get(
        option.name, option.default)
    assert getattr(settings, option.name) == expected


@pytest.mark.parametrize("option", schema.MACHINETYPE_OPTIONS, ids=lambda opt: opt.name)
def test_machinetype_default(option):
    machinetype = load(BASE).machinetypes["mt"]
    expected = "image.iso" if option.name == "root_image" else option.default
    assert getattr(machinetype, option.name) == expected


@pytest.mark.parametrize("cls, table", [(Settings, schema.SETTINGS_OPTIONS),
                                        (Machinetype, schema.MACHINETYPE_OPTIONS)])
def test_schema_defaults_match_configtypes(cls, table):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for option in table:
        assert option.name in fields, f"{option.name} has no field in {cls.__name__}"
        if not option.required:
            assert fields[option.name].default == option.default, option.name


@pytest.mark.parametrize("name, bad", sorted(BAD_SETTINGS.items()))
def test_settings_bad_value(name, bad):
    found = problems_of(f"[settings]\nvac_space = vac01.example.com\n{name} = {bad}\n")
    assert any(p.startswith(f"vac.conf:3: [settings] {name}: ") and "(expected" in p
               for p in found), found


@pytest.mark.parametrize("name, bad", sorted(BAD_MACHINETYPE.items()))
def test_machinetype_bad_value(name, bad):
    found = problems_of(BASE + f"{name} = {bad}\n")
    assert any(p.startswith(f"vac.conf:5: [machinetype mt] {name}: ") and "(expected" in p
               for p in found), found


@pytest.mark.parametrize("name, bad", sorted(BAD_VACUUM_PIPE.items()))
def test_vacuum_pipe_bad_value(name, bad):
    text = BASE + "[vacuum_pipe vo]\nvacuum_pipe_url = https://vo.example.org/vo.pipe\n"
    found = problems_of(text + f"{name} = {bad}\n")
    assert any(p.startswith(f"vac.conf:7: [vacuum_pipe vo] {name}: ") for p in found), found


@pytest.mark.parametrize("section, option", [
    ("settings", "user_data_option_Bad-Name"), ("settings", "user_data_file_a.b"),
    ("settings", "machinefeatures_option_x-y"),
    ("machinetype mt", "user_data_option_a-b"), ("machinetype mt", "user_data_file_c.d"),
])
def test_pattern_option_names_must_be_a_z_0_9_underscore(section, option):
    text = ("[settings]\nvac_space = vac01.example.com\n[machinetype mt]\nroot_image = i\n"
            f"[{section}]\n{option} = x\n")
    found = problems_of(text)
    assert any(f"[{section}] {option.lower()}: " in p and "a-z 0-9 and _" in p
               for p in found), found


def test_pattern_options_collected_by_suffix():
    cfg = load("[settings]\nvac_space = vac01.example.com\nuser_data_option_site = s\n"
               "machinefeatures_option_extra = e\nuser_data_file_motd = /etc/motd\n"
               "[machinetype mt]\nroot_image = i\nuser_data_option_vo = v\n")
    assert dict(cfg.settings.user_data_options) == {"site": "s"}
    assert dict(cfg.settings.machinefeatures_options) == {"extra": "e"}
    assert dict(cfg.settings.user_data_files) == {"motd": "/etc/motd"}
    assert dict(cfg.machinetypes["mt"].user_data_options) == {"site": "s", "vo": "v"}
    assert dict(cfg.machinetypes["mt"].user_data_files) == {"motd": "/etc/motd"}


ALIASES = [(kind, alias, opt.name) for kind in (schema.SETTINGS, schema.MACHINETYPE)
           for opt in schema.TABLES[kind] for alias in opt.aliases]


@pytest.mark.parametrize("kind, alias, new", ALIASES, ids=[a for _k, a, _n in ALIASES])
def test_deprecated_alias_bad_value_names_the_alias_as_written(kind, alias, new):
    if kind == schema.SETTINGS:
        text = f"[settings]\nvac_space = vac01.example.com\n{alias} = {BAD_SETTINGS[new]}\n"
        where = f"vac.conf:3: [settings] {alias}: "
    else:
        text = BASE + f"{alias} = {BAD_MACHINETYPE[new]}\n"
        where = f"vac.conf:5: [machinetype mt] {alias}: "
    found = problems_of(text)
    assert any(p.startswith(where) and "(expected" in p for p in found), found


@pytest.mark.parametrize("name, bad", sorted(BAD_MACHINETYPE.items()))
def test_machinetype_option_in_vacuum_pipe_section_bad_value(name, bad):
    # [vacuum_pipe] sections take every machinetype option, checked the same way
    text = BASE + "[vacuum_pipe vo]\nvacuum_pipe_url = https://vo.example.org/vo.pipe\n"
    found = problems_of(text + f"{name} = {bad}\n")
    assert any(p.startswith(f"vac.conf:7: [vacuum_pipe vo] {name}: ") for p in found), found
