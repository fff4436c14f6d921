"""The effective configuration as text or JSON, with the origin of every value (pure).

Used by ``vac config`` and by the factory when it logs the configuration it read.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from vac.core import schema
from vac.core.configtypes import Config, Origin

_ORIGIN_COLUMN = 44
_Entry = Tuple[str, Any, Origin, Optional[schema.Option]]


def render_config(config: Config) -> str:
    """Text of the effective configuration, one ``option = value   # origin`` per line.

    Unset options are shown commented out; defaults are marked ``(default)``.
    """
    lines: List[str] = ["[settings]"]
    lines += [_line(*entry) for entry in _entries(config, "settings", config.settings)]
    for prefix, pipe in sorted(config.vacuum_pipes.items()):
        section = f"vacuum_pipe {prefix}"
        lines += ["", f"[{section}]"]
        lines += [_line(*entry) for entry in _pipe_entries(config, section, pipe)]
    for name, machinetype in sorted(config.machinetypes.items()):
        section = f"machinetype {name}"
        lines += ["", f"[{section}]"]
        if machinetype.pipe_prefix:
            lines.append(f"# generated from [vacuum_pipe {machinetype.pipe_prefix}]")
        lines += [_line(*entry) for entry in _entries(config, section, machinetype)]
    for name, problems in config.disabled.items():
        lines += ["", f"# [machinetype {name}] is disabled (no machines of it are created):"]
        lines += [f"#   {problem}" for problem in problems]
    return "\n".join(lines) + "\n"


def config_as_json(config: Config, brief: bool = False) -> Dict[str, Any]:
    """{valid, warnings, problems, disabled[, settings, machinetypes, vacuum_pipes]} with
    {value, origin} leaves; ``valid`` is false when a machinetype is disabled."""
    result: Dict[str, Any] = {"valid": not config.disabled, "warnings": list(config.warnings),
                              "problems": list(config.problems),
                              "disabled": {n: list(p) for n, p in config.disabled.items()}}
    if brief:
        return result
    result["settings"] = _json(_entries(config, "settings", config.settings))
    result["machinetypes"] = {name: _json(_entries(config, f"machinetype {name}", mt))
                              for name, mt in config.machinetypes.items()}
    result["vacuum_pipes"] = {
        prefix: _json(_pipe_entries(config, f"vacuum_pipe {prefix}", pipe))
        for prefix, pipe in config.vacuum_pipes.items()}
    return result


def format_value(value: object) -> str:
    """vac.conf text of a typed value: true/false, space-separated lists, multi-line text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value).replace("\n", "\n    ")


def _entries(config: Config, section: str, value: object) -> Iterator[_Entry]:
    """(option, value, origin, Option) of settings or a machinetype, schema order first."""
    kind = schema.SETTINGS if section == "settings" else schema.MACHINETYPE
    for option in schema.TABLES[kind]:
        yield option.name, getattr(value, option.name), config.origin(section, option.name), \
            option
    for pattern in schema.PATTERNS[kind]:
        for key, text in sorted(getattr(value, pattern.field).items()):
            name = pattern.prefix + key
            yield name, text, config.origin(section, name), None


def _pipe_entries(config: Config, section: str, pipe: Any) -> Iterable[_Entry]:
    entries = [("vacuum_pipe_url", pipe.vacuum_pipe_url), ("target_share", pipe.target_share)]
    entries += sorted(pipe.options.items())
    return [(name, value, config.origin(section, name), None) for name, value in entries]


def _line(name: str, value: object, origin: Origin, option: Optional[schema.Option]) -> str:
    text = f"# {name} is unset" if value is None else f"{name} = {format_value(value)}"
    note = str(origin)
    if origin.is_default and option is not None and option.default_text is not None:
        note = f"(default: {option.default_text})"
    return f"{text.ljust(_ORIGIN_COLUMN - 1)} # {note}"


def _json(entries: Iterable[_Entry]) -> Dict[str, Any]:
    return {name: {"value": list(value) if isinstance(value, tuple) else value,
                   "origin": str(origin)} for name, value, origin, _ in entries}
