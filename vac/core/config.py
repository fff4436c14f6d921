"""Merge ordered vac.conf sources into one validated, immutable Config (SPEC §1, §10.3).

Pure: the caller reads the files (``(file name, text)`` in reading order), the host name,
the processor count and any vacuum pipe documents. Each problem is
``FILE:LINE: [section] option: what (expected)``. A problem inside a machinetype only
disables that machinetype (``Config.disabled``); any other problem makes the whole
configuration invalid: every problem is raised at once as ConfigError, whose ``fallback``
is the Config of the valid parts. Deprecations and changes from 03.01 become
``Config.warnings``; nothing is printed.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from vac.core import schema
from vac.core.configsection import Problem, SectionResult, convert_section
from vac.core.configtypes import Config, Origin, Settings, VacuumPipe
from vac.core.inifile import IniDocument, IniValue, parse_ini
from vac.core.legacy import legacy_differences
from vac.core.machinetypes import build_machinetypes
from vac.core.options import NAME_RE
from vac.errors import ConfigError

SETTINGS = "settings"
_KINDS = ("machinetype", "vmtype", "vacuum_pipe")
_OBSOLETE = {
    "factories": "obsolete section [factories] is not read",
    "targetshares": "obsolete section [targetshares] is not read",
}
_OBSOLETE_EXPECTED = {
    "factories": "use the factories option in [settings]",
    "targetshares": "use target_share in each [machinetype NAME]",
}


class _Collector:
    """Problems, warnings and origins gathered while building one Config."""

    def __init__(self) -> None:
        self.problems: List[Problem] = []
        self.warnings: List[str] = []
        self.origins: Dict[Tuple[str, str], Origin] = {}

    def take(self, section: str, result: SectionResult) -> None:
        self.problems.extend(p for p, _ in result.problems)
        self.warnings.extend(result.warnings)
        for option, origin in result.origins.items():
            self.origins[(section, option)] = origin


def section_key(header: str) -> str:
    """Key of a section header: ``[MachineType Foo]`` -> ``machinetype foo``; others as is."""
    words = header.strip().lower().split(None, 1)
    if len(words) == 2 and words[0] in _KINDS:
        return f"{words[0]} {words[1].strip()}"
    return header


def parse_config(sources: Sequence[Tuple[str, str]], *, hostname: str, processor_count: int,
                 pipe_documents: Optional[Mapping[str, dict]] = None) -> Config:
    """Build the Config of one factory from its configuration texts.

    ``hostname`` is the kernel node name (used unless factory_hostname is set);
    ``processor_count`` the processors counted on the host; ``pipe_documents`` maps a
    ``[vacuum_pipe PREFIX]`` prefix to its decoded JSON document (absent: not expanded).
    Raises ConfigError listing every problem.
    """
    document = parse_ini(sources, section_key=section_key)
    found = _Collector()
    found.problems.extend(Problem(p.file, p.line, "", None, p.text) for p in document.problems)
    _check_sections(document, found)
    settings = _build_settings(document, found, hostname, processor_count)
    pipes = _build_pipes(document, found)
    built = build_machinetypes(document, settings, found.origins, pipes, pipe_documents)
    found.warnings.extend(built.warnings)
    found.warnings.extend(legacy_differences(document, settings, built.machinetypes))
    found.origins.update(built.origins)
    order = {name: index for index, (name, _) in enumerate(sources)}

    def in_file_order(problems: Sequence[Problem]) -> List[Problem]:
        return sorted(problems, key=lambda p: (order.get(p.file or "", len(order)),
                                               p.line or 0))
    config = Config(settings=settings,
                    machinetypes=MappingProxyType(dict(built.machinetypes)),
                    vacuum_pipes=MappingProxyType(pipes),
                    origins=MappingProxyType(found.origins),
                    warnings=tuple(found.warnings),
                    disabled=MappingProxyType({
                        name: tuple(str(p) for p in in_file_order(problems))
                        for name, problems in sorted(built.disabled.items())}))
    if found.problems:
        every = found.problems + [p for ps in built.disabled.values() for p in ps]
        raise ConfigError(in_file_order(every), fallback=config)
    return config


def _check_sections(document: IniDocument, found: _Collector) -> None:
    """Obsolete sections are problems (one per option); unknown sections are warnings."""
    for key in document.sections():
        file, line = document.header(key) or (None, None)
        if key in _OBSOLETE:
            options = document.options(key, with_defaults=False)
            for name, value in options.items():
                found.problems.append(Problem(value.file, value.line, key, name,
                                              _OBSOLETE[key], _OBSOLETE_EXPECTED[key]))
            if not options:
                found.problems.append(Problem(file, line, key, None, _OBSOLETE[key],
                                              _OBSOLETE_EXPECTED[key]))
        elif key != SETTINGS and not (" " in key and key.split(None, 1)[0] in _KINDS):
            found.warnings.append(f"{file}:{line}: unknown section [{key}] ignored")


def _build_settings(document: IniDocument, found: _Collector, hostname: str,
                    processor_count: int) -> Settings:
    raw = document.options(SETTINGS)
    result = convert_section(schema.SETTINGS, SETTINGS, raw, document.defaults)
    header = document.header(SETTINGS)
    where = IniValue("", header[0], header[1]) if header else None
    if not document.has_section(SETTINGS):
        result.problem(None, SETTINGS, None, "section is missing",
                       "expected a [settings] section with at least vac_space")
    elif "vac_space" not in result.values and "vac_space" not in result.raw:
        result.problem(where, SETTINGS, "vac_space", "is missing",
                       "expected the space name, e.g. vac01.example.com")
    values = result.values
    _resolve_hostname(values, result, hostname)
    _check_processors(values, result, processor_count)
    _check_settings_rules(values, result)
    found.take(SETTINGS, result)
    factory = str(values["factory_hostname"])
    values["factories"] = canonical_factories(values.get("factories", ()), factory)
    values.setdefault("vac_space", "")
    for mapping in ("machinefeatures_options", "user_data_options", "user_data_files"):
        values[mapping] = MappingProxyType(dict(values.get(mapping, {})))  # type: ignore
    return Settings(**values)  # type: ignore[arg-type]


def _resolve_hostname(values: Dict[str, object], result: SectionResult, hostname: str) -> None:
    if values.get("factory_hostname") or "factory_hostname" in result.raw:
        values.setdefault("factory_hostname", "")
        return
    name = hostname.strip().lower()
    values["factory_hostname"] = name
    if "." not in name:
        result.problem(None, SETTINGS, "factory_hostname",
                       f"the host name {name!r} of this factory is not a fully qualified "
                       "domain name", "expected factory_hostname = NAME.DOMAIN or an FQDN "
                       "host name")


def _check_processors(values: Dict[str, object], result: SectionResult, counted: int) -> None:
    total = values.get("total_processors")
    if isinstance(total, int) and total > counted:
        result.problem(result.raw.get("total_processors"), SETTINGS, "total_processors",
                       f"{total} is greater than the {counted} processors of this host",
                       f"expected at most {counted}")
        del values["total_processors"]      # the fallback Config uses the counted number


def _check_settings_rules(values: Dict[str, object], result: SectionResult) -> None:
    if values.get("singularity_user") == "root":
        result.problem(result.raw.get("singularity_user"), SETTINGS, "singularity_user",
                       "cannot be root", "expected an unprivileged user name")
    space = values.get("vac_space")
    if space and str(space).lower() == values.get("factory_hostname"):
        result.problem(result.raw.get("vac_space"), SETTINGS, "vac_space",
                       "is the host name of this factory",
                       "expected a space name that is no factory's host name")
    if bool(values.get("gocdb_cert_file")) != bool(values.get("gocdb_key_file")):
        result.warnings.append("[settings] GOCDB updates need both gocdb_cert_file and "
                               "gocdb_key_file; only one is given")
    raw_logger = result.raw.get("version_logger")
    if raw_logger and raw_logger.value.strip().lower() in ("true", "false"):
        result.warnings.append(f"[settings] version_logger = {raw_logger.value} is deprecated"
                               " - please use a number of messages per day")


def canonical_factories(names: object, factory: str) -> Tuple[str, ...]:
    """``factories`` entries: ``.`` = this factory, short names get its domain, lower case."""
    domain = factory.partition(".")[2]
    out: List[str] = []
    for name in names:  # type: ignore[attr-defined]
        name = str(name).lower()
        if name == ".":
            name = factory
        elif "." not in name and domain:
            name = f"{name}.{domain}"
        if name not in out:
            out.append(name)
    return tuple(out)


def _build_pipes(document: IniDocument, found: _Collector) -> Dict[str, VacuumPipe]:
    pipes: Dict[str, VacuumPipe] = {}
    for key in document.sections():
        if not key.startswith("vacuum_pipe "):
            continue
        prefix = key.split(None, 1)[1]
        header = document.header(key)
        where = IniValue("", header[0], header[1]) if header else None
        raw = document.options(key)
        own = {k: v for k, v in raw.items() if k in ("vacuum_pipe_url", "target_share")}
        result = convert_section(schema.VACUUM_PIPE, key, own, document.defaults)
        if not NAME_RE.match(prefix):
            result.problem(where, key, "PREFIX", f"name {prefix!r} is not valid",
                           "expected a-z 0-9 or - only")
        if "vacuum_pipe_url" not in result.raw:
            result.problem(where, key, "vacuum_pipe_url", "is missing",
                           "expected the http(s):// URL of the pipe document")
        _check_as_machinetype(key, raw, document, result)
        found.take(key, result)
        if "vacuum_pipe_url" in result.values and NAME_RE.match(prefix):
            inherited = {k: v.value for k, v in raw.items()
                         if k not in ("vacuum_pipe_url", "target_share")}
            pipes[prefix] = VacuumPipe(prefix=prefix,
                                       vacuum_pipe_url=str(result.values["vacuum_pipe_url"]),
                                       target_share=float(result.values.get("target_share",
                                                                            0.0)),
                                       options=MappingProxyType(inherited))
    return pipes


def _check_as_machinetype(key: str, raw: Mapping[str, IniValue], document: IniDocument,
                          result: SectionResult) -> None:
    """Options a [vacuum_pipe] section passes on must be valid machinetype options."""
    others = {k: v for k, v in raw.items() if k not in ("vacuum_pipe_url", "target_share")}
    checked = convert_section(schema.MACHINETYPE, key, others, document.defaults)
    result.problems.extend(checked.problems)
    result.warnings.extend(checked.warnings)
    result.origins.update(checked.origins)
