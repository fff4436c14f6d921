"""Build the Machinetypes of a Config: local sections and vacuum-pipe expansions (SPEC §1.5, §10.3).

Pure. Local ``[machinetype NAME]`` (or legacy ``[vmtype NAME]``) sections are converted
with the schema; for each ``[vacuum_pipe PREFIX]`` whose document is available, every pipe
entry becomes ``PREFIX-SUFFIX`` with precedence local section > [vacuum_pipe] section >
pipe. A machinetype whose faulty value came from a pipe is dropped with a warning (the
site cannot fix a remote pipe); any other fault disables that machinetype only: its
Problems are kept in ``BuiltMachinetypes.disabled`` and every other machinetype is built.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, List, Mapping, Optional, Tuple

from vac.core import schema
from vac.core.configsection import Problem, SectionResult, convert_section
from vac.core.configtypes import Machinetype, Origin, Settings, VacuumPipe
from vac.core.inifile import IniDocument, IniValue
from vac.core.options import NAME_RE
from vac.core.pipes import expand_pipe, merge_layers
from vac.machinemodels import DEFAULT_MODEL, machine_model
from vac.paths import Paths

_SYSTEM_PATHS = Paths()  # machinetype_path values are system paths; users map them below root

_MAPPINGS = (("user_data_options", "user_data_option_"), ("user_data_files", "user_data_file_"))


@dataclass
class BuiltMachinetypes:
    """Result of build_machinetypes: values plus everything to report."""

    machinetypes: Dict[str, Machinetype] = field(default_factory=dict)
    disabled: Dict[str, List[Problem]] = field(default_factory=dict)   # name -> its problems
    warnings: List[str] = field(default_factory=list)
    origins: Dict[Tuple[str, str], Origin] = field(default_factory=dict)


@dataclass(frozen=True)
class _Source:
    """Raw options of one machinetype to build, and where its definition starts."""

    name: str
    raw: Dict[str, IniValue]
    header: Optional[IniValue]
    pipe_prefix: Optional[str] = None


def build_machinetypes(document: IniDocument, settings: Settings,
                       settings_origins: Mapping[Tuple[str, str], Origin],
                       pipes: Mapping[str, VacuumPipe],
                       pipe_documents: Optional[Mapping[str, dict]]) -> BuiltMachinetypes:
    """Every machinetype of the configuration, sorted by name.

    ``pipe_documents`` None means pipes are not expanded at all (the vac command).
    """
    built = BuiltMachinetypes()
    local = _local_sections(document, built)
    sources = _pipe_sources(document, pipes, pipe_documents or {}, local, built)
    for name, source in local.items():
        prefix = _pipe_prefix_of(name, pipes)
        if prefix and prefix not in (pipe_documents or {}) and "root_image" not in source.raw:
            if pipe_documents is not None:
                built.warnings.append(f"[machinetype {name}] completes machinetypes of "
                                      f"[vacuum_pipe {prefix}] whose pipe is not available"
                                      " - skipped")
            continue
        sources.append(source)
    for source in sorted(sources, key=lambda s: s.name):
        _build_one(source, document, settings, settings_origins, built)
    return built


def _local_sections(document: IniDocument, built: BuiltMachinetypes) -> Dict[str, _Source]:
    legacy: Dict[str, Dict[str, IniValue]] = {}
    local: Dict[str, _Source] = {}
    for key in document.sections():
        kind, _, name = key.partition(" ")
        if kind not in ("machinetype", "vmtype") or not name:
            continue
        file, line = document.header(key) or ("", 0)
        header = IniValue("", file, line)
        if kind == "vmtype":
            built.warnings.append(f"{file}:{line}: [vmtype {name}] is deprecated - please "
                                  f"use [machinetype {name}] instead")
        if not NAME_RE.match(name):
            built.disabled.setdefault(name, []).append(Problem(
                file, line, key, "NAME", f"name {name!r} is not valid",
                "expected a-z 0-9 or - only"))
            continue
        if kind == "vmtype":
            legacy[name] = document.options(key)
        if name not in local:
            local[name] = _Source(name, {}, header)
    for name, source in local.items():
        source.raw.update(legacy.get(name, {}))
        source.raw.update(document.options(f"machinetype {name}")
                          if document.has_section(f"machinetype {name}") else {})
    return local


def _pipe_sources(document: IniDocument, pipes: Mapping[str, VacuumPipe],
                  pipe_documents: Mapping[str, dict], local: Dict[str, _Source],
                  built: BuiltMachinetypes) -> List[_Source]:
    sources: List[_Source] = []
    for prefix, pipe in sorted(pipes.items()):
        if prefix not in pipe_documents:
            continue
        url = pipe.vacuum_pipe_url
        expansion = expand_pipe(prefix, url, pipe_documents[prefix], pipe.target_share)
        built.warnings.extend(expansion.warnings)
        section = document.options(f"vacuum_pipe {prefix}")
        where = document.header(f"vacuum_pipe {prefix}") or (url, 0)
        for item in expansion.machinetypes:
            from_pipe = {k: IniValue(v, url, 0) for k, v in item.options.items()}
            mine = local.pop(item.name, None)
            raw = merge_layers(from_pipe, section, mine.raw if mine else {})
            # all machinetypes of a pipe share one local files directory (SPEC §10.3 step 3)
            raw["machinetype_path"] = IniValue(_SYSTEM_PATHS.machinetype_dir(prefix), *where)
            header = mine.header if mine else IniValue("", url, 0)
            sources.append(_Source(item.name, raw, header, prefix))
    return sources


def _pipe_prefix_of(name: str, pipes: Mapping[str, VacuumPipe]) -> Optional[str]:
    for prefix in pipes:
        if name.startswith(prefix + "-"):
            return prefix
    return None


def _build_one(source: _Source, document: IniDocument, settings: Settings,
               settings_origins: Mapping[Tuple[str, str], Origin],
               built: BuiltMachinetypes) -> None:
    section = f"machinetype {source.name}"
    if _share_only(source, document):
        built.disabled[source.name] = [Problem(
            source.header.file if source.header else None,
            source.header.line if source.header else None, section, None,
            "only target_share is given (a share-only section): the machinetype is disabled",
            "expected root_image and the other options of this machinetype on this host, "
            "or no section for it")]
        return
    result = convert_section(schema.MACHINETYPE, section, source.raw, document.defaults)
    _check_rules(source, section, result)
    _advise(section, settings, result)
    built.warnings.extend(result.warnings)
    pipe_faults = [p for p, v in result.problems if v is not None and v.line == 0]
    if pipe_faults:
        built.warnings.extend(f"{p} - machinetype {source.name} from the vacuum pipe is "
                              "not created" for p in pipe_faults)
        return
    if result.problems:
        built.disabled[source.name] = [p for p, _ in result.problems]
        return
    values = dict(result.values)
    for field_name, prefix in _MAPPINGS:
        inherited = dict(getattr(settings, field_name))
        for key in inherited:
            origin = settings_origins.get(("settings", prefix + key))
            if origin is not None and key not in values.get(field_name, {}):  # type: ignore
                built.origins[(section, prefix + key)] = origin
        inherited.update(values.get(field_name, {}))  # type: ignore[call-overload]
        values[field_name] = MappingProxyType(inherited)
    for option, origin in result.origins.items():
        built.origins[(section, option)] = origin
    built.machinetypes[source.name] = Machinetype(name=source.name,
                                                  pipe_prefix=source.pipe_prefix,
                                                  **values)  # type: ignore[arg-type]


def _share_only(source: _Source, document: IniDocument) -> bool:
    """A local section giving nothing of its own but target_share (shares kept in a file
    of their own for several hosts) and no root_image."""
    own = {name for name, value in source.raw.items()
           if document.defaults.get(name) is not value}
    return source.pipe_prefix is None and "root_image" not in source.raw and \
        own <= {"target_share"}


def _check_rules(source: _Source, section: str, result: SectionResult) -> None:
    """Rules across options of one machinetype (SPEC §1.5, B30)."""
    values, raw = result.values, result.raw
    if "vacuum_pipe_url" in source.raw:
        result.problem(source.raw["vacuum_pipe_url"], section, "vacuum_pipe_url",
                       "is no longer read in machinetype sections",
                       "expected a [vacuum_pipe PREFIX] section")
    if "root_image" not in raw:
        result.problem(source.header, section, "root_image", "is missing",
                       "expected the URL or path of the boot image")
    model = str(values.get("machine_model", DEFAULT_MODEL))
    line = machine_model(model)
    if line is not None and line.unavailable:
        result.problem(raw.get("machine_model"), section, "machine_model",
                       f"{model}: {line.unavailable}", "expected another machine_model")
    _check_image(model, section, result)
    if any(name in raw and name not in values for name in ("min_processors", "max_processors")):
        return  # already reported as not an integer
    low, high = values.get("min_processors", 1), values.get("max_processors", 1)
    if isinstance(low, int) and isinstance(high, int) and high < low:
        where = raw.get("max_processors") or raw.get("min_processors")
        result.problem(where, section, "max_processors", f"{high} is less than "
                       f"min_processors {low}", f"expected at least {low}")


def _check_image(model: str, section: str, result: SectionResult) -> None:
    """docker:// images for the docker model only, and nothing else for it (SPEC §3.4.2)."""
    image = str(result.values.get("root_image", ""))
    where = result.raw.get("root_image")
    if "root_image" not in result.raw:
        return
    if image.startswith("docker://") and model != "docker":
        result.problem(where, section, "root_image", "a docker:// image needs "
                       "machine_model = docker", "expected an http(s):// URL or a path")
    elif model == "docker" and not image.startswith("docker://"):
        result.problem(where, section, "root_image", "machine_model = docker needs an "
                       "image reference", "expected docker://REF or docker://REF@sha256:HEX")
    elif model == "docker" and not docker_reference_ok(image[len("docker://"):]):
        result.problem(where, section, "root_image", "is not a valid image reference",
                       "expected docker://[REGISTRY/]NAME[:TAG][@sha256:64 hex digits]")


_REFERENCE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"
                           r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                           r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                           r"(?:@sha256:[0-9a-f]{64})?$")


def docker_reference_ok(reference: str) -> bool:
    """An OCI image reference as podman accepts it (lower-case name components, optional
    registry host:port, tag and sha256 digest)."""
    return bool(_REFERENCE_RE.match(reference))


def _advise(section: str, settings: Settings, result: SectionResult) -> None:
    """Warnings for valid but probably unintended machinetype values."""
    values = result.values
    most = values.get("max_processors", 1)
    if isinstance(most, int) and most > settings.processors_per_superslot:
        result.warnings.append(f"[{section}] max_processors = {most} but "
                               f"processors_per_superslot = {settings.processors_per_superslot}"
                               ": machines get at most that many processors")
    if values.get("heartbeat_seconds") and not values.get("heartbeat_file"):
        result.warnings.append(f"[{section}] heartbeat_seconds has no effect without "
                               "heartbeat_file")
