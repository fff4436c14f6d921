"""Config merge, validation and provenance (SPEC §1, checklist rows 1-20)."""

from __future__ import annotations

import dataclasses

import pytest

from vac.core import schema
from vac.core.config import canonical_factories, parse_config
from vac.core.configtypes import DEFAULT_ORIGIN, Origin
from vac.errors import ConfigError

HOST = "factory1.example.com"
SETTINGS = "[settings]\nvac_space = vac01.example.com\n"
MT = "[machinetype lhcb]\nroot_image = https://example.org/cernvm.iso\ntarget_share = 1\n"


def load(*texts, hostname=HOST, processor_count=8, **kw):
    sources = [(f"f{i}.conf", t) for i, t in enumerate(texts)]
    return parse_config(sources, hostname=hostname, processor_count=processor_count, **kw)


def problems(*texts, **kw):
    """Every problem: of an invalid configuration, or of its disabled machinetypes."""
    try:
        cfg = load(*texts, **kw)
    except ConfigError as e:
        return [str(p) for p in e.problems]
    assert cfg.disabled, "expected problems"
    return list(cfg.problems)


def test_later_files_win_and_origin_names_file_and_line():
    cfg = load(SETTINGS + "mb_per_processor = 1000\n", "\n[settings]\nmb_per_processor = 3000\n",
               "[settings]\noverload_per_processor = 2\n")
    assert cfg.settings.mb_per_processor == 3000
    assert cfg.origin("settings", "mb_per_processor") == Origin("f1.conf", 3)
    assert cfg.origin("settings", "overload_per_processor") == Origin("f2.conf", 2)
    assert cfg.origin("settings", "udp_timeout_seconds") is DEFAULT_ORIGIN
    assert str(DEFAULT_ORIGIN) == "(default)"


def test_config_is_immutable():
    cfg = load(SETTINGS + MT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.settings.mb_per_processor = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.machinetypes["x"] = cfg.machinetypes["lhcb"]  # type: ignore[index]


def test_hostname_must_be_fqdn():
    found = problems(SETTINGS, hostname="factory1")
    assert any("[settings] factory_hostname" in p and "fully qualified" in p for p in found)


def test_factory_hostname_option_overrides_kernel_name():
    cfg = load(SETTINGS + "factory_hostname = F9.Example.Org\n", hostname="localhost")
    assert cfg.settings.factory_hostname == "f9.example.org"
    assert load(SETTINGS, hostname="F1.Example.com").settings.factory_hostname == \
        "f1.example.com"


def test_settings_section_and_vac_space_required():
    assert problems("[machinetype x]\nroot_image = i\n") == [
        "(no file): [settings]: section is missing (expected a [settings] section with at "
        "least vac_space)"]
    assert problems("\n[settings]\nmb_per_processor = 1\n") == [
        "f0.conf:2: [settings] vac_space: is missing (expected the space name, e.g. "
        "vac01.example.com)"]


def test_vac_space_must_not_be_the_factory_name():
    assert any("vac_space: is the host name" in p
               for p in problems(f"[settings]\nvac_space = {HOST}\n"))


def test_total_processors_bounded_by_counted_processors():
    found = problems(SETTINGS + "total_processors = 9\n", processor_count=8)
    assert found == ["f0.conf:3: [settings] total_processors: 9 is greater than the 8 "
                     "processors of this host (expected at most 8)"]
    assert load(SETTINGS + "total_processors = 4\n").settings.total_processors == 4


SETTINGS_ALIASES = [
    ("cpu_total", "total_processors", "3", 3),
    ("overload_per_cpu", "overload_per_processor", "2.5", 2.5),
    ("scratch_gb", "disk_gb_per_processor", "20", 20),
    ("disk_gb_per_cpu", "disk_gb_per_processor", "30", 30),
    ("vcpu_per_machine", "processors_per_superslot", "4", 4),
    ("cpu_per_machine", "processors_per_superslot", "4", 4),
    ("mb_per_cpu", "mb_per_processor", "1024", 1024),
    ("hs06_per_cpu", "hs06_per_processor", "10.5", 10.5),
]
MACHINETYPE_ALIASES = [
    ("vm_model", "machine_model", "vm-raw", "vm-raw"),
    ("machineoutputs_days", "machines_dir_days", "7", 7.0),
    ("cernvm_signing_dn", "image_signing_dn", "CN=x", "CN=x"),
]


@pytest.mark.parametrize("kind, tested", [(schema.SETTINGS, SETTINGS_ALIASES),
                                          (schema.MACHINETYPE, MACHINETYPE_ALIASES),
                                          (schema.VACUUM_PIPE, [])])
def test_every_schema_alias_is_tested(kind, tested):
    assert {(alias, new) for alias, new, _t, _v in tested} == \
        {(alias, opt.name) for opt in schema.TABLES[kind] for alias in opt.aliases}


@pytest.mark.parametrize("alias, new, text, value", SETTINGS_ALIASES)
def test_settings_aliases_map_with_warning(alias, new, text, value):
    cfg = load(SETTINGS + f"{alias} = {text}\n")
    assert getattr(cfg.settings, new) == value
    assert cfg.origin("settings", new) == Origin("f0.conf", 3)
    assert any(f"{alias} is deprecated - please use {new} instead" in w for w in cfg.warnings)


@pytest.mark.parametrize("alias, new, text, value", MACHINETYPE_ALIASES)
def test_machinetype_aliases_map_with_warning(alias, new, text, value):
    cfg = load(SETTINGS + MT + f"{alias} = {text}\n")
    assert getattr(cfg.machinetypes["lhcb"], new) == value
    assert any(f"{alias} is deprecated" in w for w in cfg.warnings)


def test_new_names_win_over_aliases_b26():
    cfg = load(SETTINGS + "cpu_total = 2\ntotal_processors = 6\nmb_per_cpu = 1\n"
               "mb_per_processor = 4000\n" + MT + "vm_model = vm-raw\nmachine_model = cernvm4\n")
    assert cfg.settings.total_processors == 6
    assert cfg.settings.mb_per_processor == 4000
    assert cfg.machinetypes["lhcb"].machine_model == "cernvm4"
    assert any("cpu_total is deprecated and ignored because total_processors is given" in w
               for w in cfg.warnings)


def test_first_alias_wins_among_aliases():
    assert load(SETTINGS + "disk_gb_per_cpu = 5\nscratch_gb = 7\n").settings \
        .disk_gb_per_processor == 7


@pytest.mark.parametrize("section, option, warning", sorted(
    [("settings", name, text) for name, text in schema.IGNORED_SETTINGS.items()]
    + [("machinetype lhcb", name, text) for name, text in schema.IGNORED_MACHINETYPE.items()]))
def test_ignored_deprecated_options_warn(section, option, warning):
    cfg = load(SETTINGS + MT + f"[{section}]\n{option} = 1\n")
    assert f"f0.conf:7: [{section}] {warning}" in cfg.warnings
    assert option in warning and "ignored" in warning


def test_unknown_options_and_sections_warn():
    cfg = load(SETTINGS + "colour = blue\n" + MT + "flavour = mint\n[other]\nx = 1\n")
    assert any("[settings] colour: unknown option ignored" in w for w in cfg.warnings)
    assert any("[machinetype lhcb] flavour: unknown option" in w for w in cfg.warnings)
    assert any("unknown section [other]" in w for w in cfg.warnings)


@pytest.mark.parametrize("text, expected", [
    ("[factories]\nnames = f1 f2\n", "f1.conf:2: [factories] names: obsolete section "
     "[factories] is not read (use the factories option in [settings])"),
    ("[targetshares]\nlhcb = 0.5\n", "f1.conf:2: [targetshares] lhcb: obsolete section "
     "[targetshares] is not read (use target_share in each [machinetype NAME])"),
    ("[targetshares]\n", "f1.conf:1: [targetshares]: obsolete section [targetshares] is not "
     "read (use target_share in each [machinetype NAME])"),
])
def test_obsolete_sections_rejected(text, expected):
    assert problems(SETTINGS + MT, text) == [expected]


def test_vacmon_hostport_lower_cased():
    cfg = load(SETTINGS + "vacmon_hostport = Mon.Example.org:8884 b.c:1\n")
    assert cfg.settings.vacmon_hostport == ("mon.example.org:8884", "b.c:1")


def test_draining_accepts_yes_and_true_b26():
    assert load(SETTINGS + "draining = yes\n").settings.draining is True
    assert load(SETTINGS + "draining = true\n").settings.draining is True
    assert load(SETTINGS + "draining = no\n").settings.draining is False


def test_version_logger_legacy_words_warn():
    cfg = load(SETTINGS + "version_logger = true\n")
    assert cfg.settings.version_logger == 1
    assert any("version_logger = true is deprecated" in w for w in cfg.warnings)


def test_singularity_user_cannot_be_root():
    assert any("singularity_user: cannot be root" in p
               for p in problems(SETTINGS + "singularity_user = root\n"))


def test_factories_canonicalised():
    cfg = load(SETTINGS + "factories = .\n  F2\n  f3.other.org f2.example.com\n")
    assert cfg.settings.factories == (HOST, "f2.example.com", "f3.other.org")
    assert canonical_factories(("a",), "nodomain") == ("a",)


@pytest.mark.parametrize("section, expected", [
    ("[machinetype Foo_1]\nroot_image = i\n", "f0.conf:3: [machinetype foo_1] NAME: name "
     "'foo_1' is not valid (expected a-z 0-9 or - only)"),
    ("[vacuum_pipe A.B]\nvacuum_pipe_url = https://x.org/p\n", "f0.conf:3: [vacuum_pipe a.b] "
     "PREFIX: name 'a.b' is not valid (expected a-z 0-9 or - only)"),
])
def test_section_name_charset(section, expected):
    assert problems(SETTINGS + section) == [expected]


def test_machinetype_headers_are_lower_cased_and_merged():
    cfg = load(SETTINGS + "[MachineType LHCb]\nroot_image = i\n[machinetype lhcb]\n"
               "fizzle_seconds = 5\n")
    assert cfg.machinetypes["lhcb"].fizzle_seconds == 5
    assert cfg.machinetypes["lhcb"].root_image == "i"


def test_vmtype_is_a_deprecated_machinetype():
    cfg = load(SETTINGS + "[vmtype old]\nroot_image = i\n")
    assert "old" in cfg.machinetypes
    assert any("[vmtype old] is deprecated" in w for w in cfg.warnings)


def test_singularity_model_disabled_naming_docker():
    found = problems(SETTINGS + MT + "machine_model = singularity\n")
    assert len(found) == 1 and found[0].startswith(
        "f0.conf:6: [machinetype lhcb] machine_model: singularity: this build cannot run it: "
        "Apptainer (Singularity) cannot be installed")
    assert "use machine_model = docker" in found[0]


def test_docker_image_needs_docker_model():
    found = problems(SETTINGS + "[machinetype d]\nroot_image = docker://cern/cc7\n")
    assert any("root_image: a docker:// image needs machine_model = docker" in p for p in found)


@pytest.mark.parametrize("image,ok", [
    ("docker://localhost/vac-debian12:b97966b4", True), ("docker://cern/cc7", True),
    ("docker://registry.example.org:5000/atlas/adc-payload:1.2.3", True),
    ("docker://cern/cc7@sha256:" + "ab" * 32, True),
    ("docker://Cern/CC7", False), ("docker://cern/cc7@sha256:abc", False),
    ("docker://cern/cc7 --privileged", False), ("/images/cc7.tar", False)])
def test_docker_model_needs_an_image_reference(image, ok):
    text = SETTINGS + f"[machinetype d]\nroot_image = {image}\nmachine_model = docker\n"
    if ok:
        assert load(text).machinetypes["d"].root_image == image
    else:
        assert problems(text)[0].startswith("f0.conf:4: [machinetype d] root_image: ")


def test_root_image_required_b30():
    assert problems(SETTINGS + "\n[machinetype x]\ntarget_share = 1\nbackoff_seconds = 1\n") \
        == ["f0.conf:4: [machinetype x] root_image: is missing (expected the URL or path of "
            "the boot image)"]


def test_max_processors_not_below_min():
    found = problems(SETTINGS + MT + "min_processors = 8\nmax_processors = 4\n")
    assert found == ["f0.conf:7: [machinetype lhcb] max_processors: 4 is less than "
                     "min_processors 8 (expected at least 8)"]


def test_vacuum_pipe_url_not_allowed_in_machinetype():
    assert any("vacuum_pipe_url: is no longer read" in p
               for p in problems(SETTINGS + MT + "vacuum_pipe_url = https://x/y\n"))


def test_vacuum_pipe_section_needs_url_and_valid_inherited_options():
    found = problems(SETTINGS + "[vacuum_pipe vo]\nfizzle_seconds = soon\n")
    assert "f0.conf:3: [vacuum_pipe vo] vacuum_pipe_url: is missing (expected the http(s):// " \
           "URL of the pipe document)" in found
    assert any("[vacuum_pipe vo] fizzle_seconds: 'soon' is not valid" in p for p in found)


def test_five_different_mistakes_all_reported_with_file_line_section_option():
    site = ("[settings]\nmb_per_processor = lots\n"
            "[machinetype Bad_Name]\nroot_image = i\n"
            "[machinetype lhcb]\nroot_image = i\nmin_processors = 4\nmax_processors = 2\n")
    main = "[targetshares]\nlhcb = 1\n"
    found = problems(site, main)
    assert found == [
        "f0.conf:1: [settings] vac_space: is missing (expected the space name, e.g. "
        "vac01.example.com)",
        "f0.conf:2: [settings] mb_per_processor: 'lots' is not valid (expected an integer >= 1)",
        "f0.conf:3: [machinetype bad_name] NAME: name 'bad_name' is not valid (expected a-z "
        "0-9 or - only)",
        "f0.conf:8: [machinetype lhcb] max_processors: 2 is less than min_processors 4 "
        "(expected at least 4)",
        "f1.conf:2: [targetshares] lhcb: obsolete section [targetshares] is not read (use "
        "target_share in each [machinetype NAME])",
    ]


def test_parse_errors_are_problems_too():
    assert any(p.startswith("f0.conf:3: cannot parse line")
               for p in problems(SETTINGS + "garbage\n"))


def test_default_section_feeds_every_section_silently():
    cfg = load("[DEFAULT]\nfizzle_seconds = 99\n" + SETTINGS + MT)
    assert cfg.machinetypes["lhcb"].fizzle_seconds == 99
    assert not any("fizzle_seconds" in w for w in cfg.warnings)


@pytest.mark.parametrize("text, words", [
    (SETTINGS + MT + "max_processors = 8\n", "machines get at most that many processors"),
    (SETTINGS + MT + "heartbeat_seconds = 60\n", "heartbeat_seconds has no effect"),
    (SETTINGS + "gocdb_cert_file = /etc/c.pem\n" + MT, "need both gocdb_cert_file"),
])
def test_advisory_warnings(text, words):
    assert any(words in w for w in load(text).warnings)


def test_no_warnings_for_a_clean_config():
    assert load(SETTINGS + "processors_per_superslot = 8\n" + MT + "max_processors = 8\n"
                "heartbeat_file = hb\nheartbeat_seconds = 60\n").warnings == ()
