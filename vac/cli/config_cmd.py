"""``vac config``: print the effective configuration with the origin of every value.

``vac config --check`` only validates: exit 0 when valid, 1 with every problem listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterable, List, Mapping, Optional, TextIO

from vac.core import schema
from vac.core.configtypes import Config, Origin
from vac.errors import ConfigError
from vac.paths import Paths
from vac.services.configload import load_config

_ORIGIN_COLUMN = 44


def register(subparsers) -> None:
    """Add ``config`` to the vac parser."""
    p = subparsers.add_parser("config", help="show the effective configuration and where "
                              "each value comes from; --check only validates it")
    p.add_argument("--check", action="store_true",
                   help="only validate: exit 0 if valid, 1 listing every problem")
    p.add_argument("--pipes", choices=("none", "cache"), default="none",
                   help="expand vacuum pipes from the cache (default: not expanded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Optional[TextIO] = None,
        err: Optional[TextIO] = None) -> int:
    """Load the configuration under ``--root`` and print it or the problems; exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    paths = Paths.from_root(getattr(args, "root", "/"))
    try:
        config = load_config(paths, pipes=getattr(args, "pipes", "none"))
    except ConfigError as e:
        if getattr(args, "json", False):
            out.write(json.dumps({"valid": False, "problems": [str(p) for p in e.problems]},
                                 indent=2) + "\n")
            return 1
        print("Reading configuration fails with error:", file=err)
        for problem in e.problems:
            print(f"  {problem}", file=err)
        print(f"{len(e.problems)} problem(s) found", file=err)
        return 1
    if getattr(args, "json", False):
        out.write(json.dumps(config_as_json(config, brief=getattr(args, "check", False)),
                             indent=2, sort_keys=True) + "\n")
        return 0
    for warning in config.warnings:
        print(f"warning: {warning}", file=err)
    if getattr(args, "check", False):
        print(f"Configuration OK: {len(config.machinetypes)} machinetype(s), "
              f"{len(config.vacuum_pipes)} vacuum pipe(s), "
              f"{len(config.warnings)} warning(s)", file=out)
        return 0
    out.write(render_config(config))
    return 0


def render_config(config: Config) -> str:
    """Text of the effective configuration, one ``option = value   # origin`` per line."""
    lines: List[str] = ["[settings]"]
    lines += _render_section(config, "settings", config.settings, schema.SETTINGS_OPTIONS,
                             schema.SETTINGS_PATTERNS)
    for prefix, pipe in sorted(config.vacuum_pipes.items()):
        section = f"vacuum_pipe {prefix}"
        lines += ["", f"[{section}]"]
        lines.append(_line("vacuum_pipe_url", pipe.vacuum_pipe_url,
                           config.origin(section, "vacuum_pipe_url")))
        lines.append(_line("target_share", pipe.target_share,
                           config.origin(section, "target_share")))
        for option, text in sorted(pipe.options.items()):
            lines.append(_line(option, text, config.origin(section, option)))
    for name, machinetype in sorted(config.machinetypes.items()):
        section = f"machinetype {name}"
        lines += ["", f"[{section}]"]
        if machinetype.pipe_prefix:
            lines.append(f"# generated from [vacuum_pipe {machinetype.pipe_prefix}]")
        lines += _render_section(config, section, machinetype, schema.MACHINETYPE_OPTIONS,
                                 schema.MACHINETYPE_PATTERNS)
    return "\n".join(lines) + "\n"


def _render_section(config: Config, section: str, value: object,
                    options: Iterable[schema.Option],
                    patterns: Iterable[schema.PatternOption]) -> List[str]:
    lines = []
    for option in options:
        lines.append(_line(option.name, getattr(value, option.name),
                           config.origin(section, option.name), option))
    for pattern in patterns:
        mapping: Mapping[str, str] = getattr(value, pattern.field)
        for key, text in sorted(mapping.items()):
            name = pattern.prefix + key
            lines.append(_line(name, text, config.origin(section, name)))
    return lines


def _line(name: str, value: object, origin: Origin,
          option: Optional[schema.Option] = None) -> str:
    text = f"{name} = {format_value(value)}"
    if value is None:
        text = f"# {name} is unset"
    note = str(origin)
    if origin.is_default and option is not None and option.default_text is not None:
        note = f"(default: {option.default_text})"
    return f"{text.ljust(_ORIGIN_COLUMN - 1)} # {note}"


def format_value(value: object) -> str:
    """vac.conf text of a typed value: true/false, space-separated lists, multi-line text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value).replace("\n", "\n    ")


def config_as_json(config: Config, brief: bool = False) -> dict:
    """{valid, warnings[, settings, machinetypes, vacuum_pipes]} with {value, origin} leaves."""
    result: dict = {"valid": True, "warnings": list(config.warnings)}
    if brief:
        return result
    result["settings"] = _json_section(config, "settings", config.settings,
                                       schema.SETTINGS_OPTIONS, schema.SETTINGS_PATTERNS)
    result["machinetypes"] = {
        name: _json_section(config, f"machinetype {name}", mt, schema.MACHINETYPE_OPTIONS,
                            schema.MACHINETYPE_PATTERNS)
        for name, mt in config.machinetypes.items()}
    result["vacuum_pipes"] = {
        prefix: {"vacuum_pipe_url": pipe.vacuum_pipe_url, "target_share": pipe.target_share,
                 "options": dict(pipe.options)} for prefix, pipe in config.vacuum_pipes.items()}
    return result


def _json_section(config: Config, section: str, value: object,
                  options: Iterable[schema.Option],
                  patterns: Iterable[schema.PatternOption]) -> dict:
    out = {}
    for option in options:
        item = getattr(value, option.name)
        out[option.name] = {"value": list(item) if isinstance(item, tuple) else item,
                            "origin": str(config.origin(section, option.name))}
    for pattern in patterns:
        for key, text in getattr(value, pattern.field).items():
            name = pattern.prefix + key
            out[name] = {"value": text, "origin": str(config.origin(section, name))}
    return out

