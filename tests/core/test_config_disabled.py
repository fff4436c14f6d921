"""A bad machinetype disables that machinetype, not the configuration; an invalid
configuration still has a fallback of its valid parts; values that act differently from
Vac 03.01 are warned about (issue points 5 and 6)."""

from __future__ import annotations

import pytest

from vac.core.config import parse_config
from vac.errors import ConfigError

HOST = "factory1.example.com"
SETTINGS = "[settings]\nvac_space = vac01.example.com\n"
GOOD = "[machinetype good]\nroot_image = https://example.org/good.iso\ntarget_share = 1\n"


def load(*texts, **kw):
    return parse_config([(f"f{i}.conf", t) for i, t in enumerate(texts)], hostname=HOST,
                        processor_count=8, **kw)


@pytest.mark.parametrize("section, expected", [
    ("[machinetype bad]\ntarget_share = 3\n",
     "f1.conf:1: [machinetype bad]: only target_share is given (a share-only section): the "
     "machinetype is disabled (expected root_image and the other options of this "
     "machinetype on this host, or no section for it)"),
    ("[machinetype bad]\nroot_image = i.iso\nroot_device = sd-a\n",
     "f1.conf:3: [machinetype bad] root_device: 'sd-a' is not valid"),
    ("[machinetype bad]\nroot_image = i.iso\ndisk_gb_per_processor = 1.5\n",
     "f1.conf:3: [machinetype bad] disk_gb_per_processor: '1.5' is not valid (expected an "
     "integer >= 0)"),
    ("[machinetype bad]\nroot_image = i.iso\nmachine_model = singularity\n",
     "f1.conf:3: [machinetype bad] machine_model: singularity: this build cannot run it"),
    ("[machinetype bad]\nroot_image = i.iso\nmachine_model = docker\n",
     "f1.conf:2: [machinetype bad] root_image: machine_model = docker needs an image "
     "reference"),
    ("[machinetype bad]\nroot_image = i.iso\nmachine_model = cernvm9\n",
     "f1.conf:3: [machinetype bad] machine_model: 'cernvm9' is not valid"),
])
def test_a_bad_machinetype_is_disabled_and_the_others_are_built(section, expected):
    cfg = load(SETTINGS + GOOD, section)
    assert list(cfg.machinetypes) == ["good"]
    assert list(cfg.disabled) == ["bad"]
    assert len(cfg.disabled["bad"]) == 1 and cfg.disabled["bad"][0].startswith(expected)
    assert cfg.problems == cfg.disabled["bad"]


def test_shares_in_their_own_file_complete_full_sections_silently():
    shares = "[machinetype good]\ntarget_share = 5\n[machinetype elsewhere]\ntarget_share = 2\n"
    cfg = load(shares, SETTINGS + GOOD.replace("target_share = 1\n", ""))
    assert cfg.machinetypes["good"].target_share == 5.0
    assert list(cfg.disabled) == ["elsewhere"]


def test_every_problem_of_a_machinetype_is_kept_in_file_order():
    cfg = load(SETTINGS, "[machinetype bad]\nroot_image = i\nfizzle_seconds = x\n"
                         "backoff_seconds = y\n")
    assert [p.split(":")[1] for p in cfg.disabled["bad"]] == ["3", "4"]


def test_an_invalid_configuration_lists_every_problem_and_has_a_fallback():
    text = (SETTINGS + "mb_per_processor = lots\ntotal_processors = 64\ncycle_seconds = 7\n"
            + GOOD + "[machinetype bad]\nroot_image = i\nroot_device = ../x\n")
    with pytest.raises(ConfigError) as e:
        load(text)
    found = [str(p) for p in e.value.problems]
    assert [p.split(":")[1] for p in found] == ["3", "4", "11"]
    fallback = e.value.fallback
    assert fallback.settings.mb_per_processor == 2048          # default for the bad value
    assert fallback.settings.total_processors is None          # the counted processors
    assert fallback.settings.cycle_seconds == 7                # valid values are kept
    assert fallback.settings.factory_hostname == HOST
    assert list(fallback.machinetypes) == ["good"] and list(fallback.disabled) == ["bad"]


def test_unreadable_structure_still_gives_a_fallback_with_defaults():
    with pytest.raises(ConfigError) as e:
        load("[machinetype x]\nroot_image = i\n")
    assert e.value.fallback.settings.vac_space == ""
    assert e.value.fallback.settings.mjf_port == 80


# --- point 6: values that act differently from Vac 03.01 -----------------------------------

@pytest.mark.parametrize("option, words", [
    ("[settings]\ncycle_seconds = 30\n", "[settings] cycle_seconds = 30: the factory now "
     "pauses this many seconds between cycles (Vac 03.01: ignored; it paused 60 s)"),
    ("[settings]\ndomain_type = qemu\n", "[settings] domain_type = qemu: machines now run "
     "with this libvirt domain type"),
    ("[settings]\ndraining = true\n", "[settings] draining = true: this factory now drains"),
    ("[settings]\nfix_networking = no\n", "[settings] fix_networking = no: the network "
     "repair commands are no longer run"),
    ("[machinetype good]\nuser_data_proxy = yes\n", "[machinetype good] user_data_proxy = "
     "yes: an X.509 proxy is now inserted"),
    ("[machinetype good]\nimage_signing_dn = /CN=x\n", "image_signing_dn = /CN=x: the "
     "signer DN of the image is now checked"),
    ("[machinetype good]\nscratch_device = vdc\n", "scratch_device = vdc: the scratch disk"),
])
def test_values_that_act_differently_from_0301_warn_with_their_place(option, words):
    cfg = load(SETTINGS + GOOD, option)
    found = [w for w in cfg.warnings if "Vac 03.01" in w]
    assert len(found) == 1 and found[0].startswith("f1.conf:2: ") and words in found[0]


@pytest.mark.parametrize("option", [
    "[settings]\ncycle_seconds = 60\n", "[settings]\ndomain_type = kvm\n",
    "[settings]\ndraining = yes\n", "[settings]\ndraining = false\n",
    "[settings]\nfix_networking = false\n", "[machinetype good]\nuser_data_proxy = true\n",
    "[machinetype good]\nscratch_device = vdb\n",
])
def test_values_that_act_as_in_0301_do_not_warn(option):
    assert not [w for w in load(SETTINGS + GOOD, option).warnings if "Vac 03.01" in w]
