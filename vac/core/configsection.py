"""Convert the raw options of one vac.conf section with the schema, collecting problems.

Deprecated aliases map to their new names (the new name wins when both are given: B26),
ignored options and unknown options become warnings, pattern options
(``user_data_option_XXX`` ...) are collected into mappings keyed by XXX, and every
conversion failure becomes a Problem with file, line, section and option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from vac.core import schema
from vac.core.configtypes import Origin
from vac.core.inifile import IniValue
from vac.core.options import SUFFIX_NAME_RE


@dataclass(frozen=True)
class Problem:
    """One configuration mistake: ``FILE:LINE: [section] option: what (expected)``."""

    file: Optional[str]
    line: Optional[int]
    section: str
    option: Optional[str]
    what: str
    expected: str = ""

    def __str__(self) -> str:
        where = self.file or "(no file)"
        if self.line:
            where = f"{where}:{self.line}"
        head = f"{where}: [{self.section}]" if self.section else where
        if self.option:
            head += f" {self.option}"
        tail = f" ({self.expected})" if self.expected else ""
        return f"{head}: {self.what}{tail}"


@dataclass
class SectionResult:
    """Typed values (by attribute name), origins (by option name), problems, warnings."""

    values: Dict[str, object] = field(default_factory=dict)
    origins: Dict[str, Origin] = field(default_factory=dict)
    raw: Dict[str, IniValue] = field(default_factory=dict)
    problems: List[Tuple[Problem, Optional[IniValue]]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    given_as: Dict[str, str] = field(default_factory=dict)   # option name -> alias used

    def problem(self, value: Optional[IniValue], section: str, option: Optional[str],
                what: str, expected: str = "") -> None:
        """Record a problem located at ``value`` (None: no file position known)."""
        file, line = (value.file, value.line) if value else (None, None)
        self.problems.append((Problem(file, line, section, option, what, expected), value))


def origin_of(value: IniValue) -> Origin:
    """Origin of a raw value; values from a pipe document carry line 0 (no line)."""
    return Origin(value.file, value.line or None)


def convert_section(kind: str, section: str, raw: Mapping[str, IniValue],
                    from_default: Mapping[str, IniValue]) -> SectionResult:
    """Convert ``raw`` options of ``section`` (of ``kind`` settings/machinetype/vacuum_pipe).

    ``from_default`` holds the [DEFAULT] options; unknown ones of those are not warned about.
    """
    result = SectionResult()
    resolved = _resolve_aliases(kind, section, raw, result)
    patterns = schema.PATTERNS[kind]
    for name, value in resolved.items():
        spec = schema.option(kind, name)
        if spec is not None:
            _convert_one(spec, section, name, value, result)
        elif any(name.startswith(p.prefix) for p in patterns):
            _convert_pattern(patterns, section, name, value, result)
        elif name in _ignored(kind):
            result.warnings.append(f"{_where(value)}: [{section}] {_ignored(kind)[name]}")
        elif name not in from_default or from_default[name] is not value:
            result.warnings.append(f"{_where(value)}: [{section}] {name}: unknown option "
                                   "ignored")
    return result


def _resolve_aliases(kind: str, section: str, raw: Mapping[str, IniValue],
                     result: SectionResult) -> Dict[str, IniValue]:
    aliases = schema.alias_map(kind)
    resolved = {name: value for name, value in raw.items() if name not in aliases}
    for spec in schema.TABLES[kind]:
        for alias in spec.aliases:
            if alias not in raw:
                continue
            if spec.name in resolved:
                result.warnings.append(f"{_where(raw[alias])}: [{section}] {alias} is "
                                       f"deprecated and ignored because {spec.name} is given")
                continue
            result.warnings.append(f"{_where(raw[alias])}: [{section}] {alias} is deprecated"
                                   f" - please use {spec.name} instead")
            resolved[spec.name] = raw[alias]
            result.given_as[spec.name] = alias
    return resolved


def _convert_one(spec: schema.Option, section: str, name: str, value: IniValue,
                 result: SectionResult) -> None:
    result.raw[name] = value
    try:
        result.values[name] = spec.convert(value.value)
    except ValueError as e:
        result.problem(value, section, result.given_as.get(name, name),  # as in the file
                       f"{_shown(value.value)} is not valid", str(e))
        return
    result.origins[name] = origin_of(value)


def _convert_pattern(patterns: Tuple[schema.PatternOption, ...], section: str, name: str,
                     value: IniValue, result: SectionResult) -> None:
    pattern = next(p for p in patterns if name.startswith(p.prefix))
    key = name[len(pattern.prefix):]
    if not SUFFIX_NAME_RE.match(key):
        result.problem(value, section, name, f"name of {pattern.prefix}xxx ({name}) is not "
                       "valid", "expected xxx of a-z 0-9 and _ only")
        return
    mapping = result.values.setdefault(pattern.field, {})
    mapping[key] = value.value  # type: ignore[index]
    result.raw[name] = value
    result.origins[name] = origin_of(value)


def _ignored(kind: str) -> Mapping[str, str]:
    if kind == schema.SETTINGS:
        return schema.IGNORED_SETTINGS
    return schema.IGNORED_MACHINETYPE


def _where(value: IniValue) -> str:
    return str(origin_of(value))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
