"""Values that act differently from Vac 03.01, where the option was a no-op (SPEC §1.4, §12).

Pure. A site upgrading from 03.01 keeps its files; an option 03.01 parsed but ignored (or
read with a narrower meaning) now acts, so each such value gets one warning saying what
changed: ``FILE:LINE: [section] option = value: what it does now (03.01: what it did)``.
The factory logs each warning once per change of the configuration; ``vac config`` prints
them; vac.conf(5) lists them under "CHANGES FROM VAC 03.01".
"""

from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Tuple

from vac.core.configtypes import Machinetype, Settings
from vac.core.inifile import IniDocument, IniValue

# option -> (does the value act differently from 03.01?, what it does now, what 03.01 did)
Rule = Tuple[Callable[[str, object], bool], str, str]


def _word(text: str) -> str:
    return text.strip().lower()


SETTINGS_RULES: Mapping[str, Rule] = {
    "cycle_seconds": (
        lambda raw, value: value != 60,
        "the factory now pauses this many seconds between cycles",
        "ignored; it paused 60 s"),
    "domain_type": (
        lambda raw, value: value != "kvm",
        "machines now run with this libvirt domain type (qemu = TCG emulation)",
        "ignored; machines always ran as kvm domains"),
    "draining": (
        lambda raw, value: value is True and _word(raw) != "yes",
        "this factory now drains: no new machines are created",
        "only 'yes' drained, so it kept creating machines"),
    "fix_networking": (
        lambda raw, value: value is False and _word(raw) != "false",
        "the network repair commands are no longer run",
        "only 'false' disabled them, so they ran"),
}

MACHINETYPE_RULES: Mapping[str, Rule] = {
    "user_data_proxy": (
        lambda raw, value: value is True and _word(raw) != "true",
        "an X.509 proxy is now inserted into the user_data",
        "only 'true' enabled it, so no proxy was inserted"),
    "legacy_proxy": (
        lambda raw, value: value is True and _word(raw) != "true",
        "the proxy is now a legacy Globus proxy",
        "only 'true' enabled it, so the proxy was RFC 3820"),
    "image_signing_dn": (
        lambda raw, value: True,
        "the signer DN of the image is now checked against it",
        "not enforced; only cernvm_signing_dn was"),
    "scratch_device": (
        lambda raw, value: value != "vdb",
        "the scratch disk of vm-raw machines is now attached as this device",
        "never stored, so vm-raw machines with a scratch disk failed"),
}


def _differences(section: str, raw: Mapping[str, IniValue], values: object,
                 rules: Mapping[str, Rule]) -> List[str]:
    found = []
    for option, (differs, now, then) in rules.items():
        given: Optional[IniValue] = raw.get(option)
        if given is None:
            continue
        value = getattr(values, option)
        if differs(given.value, value):
            where = f"{given.file}:{given.line}" if given.line else given.file
            found.append(f"{where}: [{section}] {option} = {given.value.strip()}: {now} "
                         f"(Vac 03.01: {then})")
    return found


def legacy_differences(document: IniDocument, settings: Settings,
                       machinetypes: Mapping[str, Machinetype]) -> List[str]:
    """One warning per value given in the files that acts differently from 03.01.

    Only values written in the files count (a default is nothing the site chose); values
    of machinetypes from vacuum pipes are not the site's and are not reported.
    """
    found = _differences("settings", document.options("settings", with_defaults=False),
                         settings, SETTINGS_RULES)
    for name, mt in sorted(machinetypes.items()):
        section = f"machinetype {name}"
        if mt.pipe_prefix is None and document.has_section(section):
            found += _differences(section, document.options(section, with_defaults=False),
                                  mt, MACHINETYPE_RULES)
    return found
