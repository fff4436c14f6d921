"""Vacuum Pipe documents (SPEC §10, PEERS-AND-STANDARDS §2.3) -> machinetype option texts.

Pure: the caller supplies the parsed JSON document. Each entry with suffix S of the pipe
of ``[vacuum_pipe PREFIX]`` becomes machinetype ``PREFIX-S`` whose options are the
whitelisted, safety-checked entry values as text (lists joined with spaces, fixing B21),
with ``target_share`` normalised to the section's total share. Everything skipped is
reported as a warning naming the option and the URL; a pipe never makes the site's
configuration invalid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

from vac.core import schema
from vac.core.options import NAME_RE

DEFAULT_CACHE_SECONDS = 3600
EMPTY_PIPE: Mapping[str, Any] = {"cache_seconds": DEFAULT_CACHE_SECONDS, "machinetypes": []}

_NO_SLASH = ("cvmfs_repositories", "heartbeat_file")
_IMAGE_PREFIXES = ("docker://", "/cvmfs/", "http://", "https://")
_USER_DATA_PREFIXES = ("http://", "https://")


@dataclass(frozen=True)
class PipeMachinetype:
    """One machinetype generated from a pipe entry: name ``PREFIX-SUFFIX`` and option texts."""

    name: str
    options: Dict[str, str]


@dataclass(frozen=True)
class PipeExpansion:
    """All machinetypes of one pipe and every message about what was skipped."""

    machinetypes: Tuple[PipeMachinetype, ...] = ()
    warnings: Tuple[str, ...] = field(default_factory=tuple)


def parse_pipe_json(data: Union[str, bytes]) -> Dict[str, Any]:
    """Decode a pipe document; raise ValueError unless it is a JSON object."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object at the top level")
    return document


def cache_seconds(document: Mapping[str, Any]) -> int:
    """The document's cache_seconds (seconds >= 0), or 3600 if absent or unusable."""
    value = document.get("cache_seconds", DEFAULT_CACHE_SECONDS)
    if isinstance(value, bool):
        return DEFAULT_CACHE_SECONDS
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return DEFAULT_CACHE_SECONDS
    return seconds if seconds >= 0 else DEFAULT_CACHE_SECONDS


def expand_pipe(prefix: str, url: str, document: Mapping[str, Any],
                total_share: float) -> PipeExpansion:
    """Turn ``document`` (from ``url``) into machinetypes ``PREFIX-SUFFIX``.

    ``total_share`` is the section's target_share, divided among the entries in proportion
    to their own target_share values (entries without one get 0).
    """
    warnings: List[str] = []
    entries = document.get("machinetypes", [])
    if not isinstance(entries, list):
        return PipeExpansion((), (f"machinetypes in {url} is not a list - no machinetypes "
                                  "created from it",))
    shares = [_share(entry) for entry in entries]
    share_sum = sum(s for s in shares if s is not None)
    made: List[PipeMachinetype] = []
    for entry, share in zip(entries, shares):
        item = _expand_entry(prefix, url, entry, warnings)
        if item is None:
            continue
        if share is not None and share_sum > 0:
            item.options["target_share"] = repr(total_share * share / share_sum)
        else:
            item.options["target_share"] = "0.0"
        made.append(item)
    return PipeExpansion(tuple(made), tuple(warnings))


def _expand_entry(prefix: str, url: str, entry: Any,
                  warnings: List[str]) -> Optional[PipeMachinetype]:
    if not isinstance(entry, dict):
        warnings.append(f"an entry of machinetypes within {url} is not an object - skipping!")
        return None
    suffix = entry.get("suffix")
    if suffix is None:
        warnings.append(f"suffix is missing from one machinetype within {url} - skipping!")
        return None
    name = f"{prefix}-{_as_text(suffix)}"
    if not NAME_RE.match(name):
        warnings.append(f"suffix {suffix!r} within {url} makes machinetype name {name!r} "
                        "which is not a-z 0-9 - only - skipping!")
        return None
    options: Dict[str, str] = {}
    for key, value in entry.items():
        if key in ("suffix", "target_share"):
            continue
        problem = _check_key(key, value)
        if problem:
            warnings.append(f"{name}: option {key} from vacuum pipe {url} {problem} - ignoring!")
            continue
        options[key] = _as_text(value)
    return PipeMachinetype(name, options)


def _check_key(key: str, value: Any) -> Optional[str]:
    """Why ``key`` = ``value`` may not come from a pipe, or None if it may."""
    is_pattern = key.startswith(("user_data_option_", "user_data_file_"))
    if key not in schema.pipe_keys() and not is_pattern:
        return "is not accepted"
    if value is None or isinstance(value, dict):
        return "has no usable value"
    text = _as_text(value)
    if (key.startswith("user_data_file_") or key in _NO_SLASH) and "/" in text:
        return "must not contain /"
    if key in ("user_data", "root_image") and "/../" in text:
        return "must not contain /../"
    if key == "user_data" and "/" in text and not text.startswith(_USER_DATA_PREFIXES):
        return "containing / must start with http:// or https://"
    if key == "root_image" and "/" in text and not text.startswith(_IMAGE_PREFIXES):
        return "containing / must start with docker://, /cvmfs/, http:// or https://"
    return None


def _share(entry: Any) -> Optional[float]:
    if not isinstance(entry, dict) or isinstance(entry.get("target_share"), bool):
        return None
    try:
        share = float(entry.get("target_share"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return share if share >= 0 and share == share and share != float("inf") else None


def _as_text(value: Any) -> str:
    """Pipe value as option text: lists joined with spaces (B21), booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(_as_text(v) for v in value)
    return str(value)


V = TypeVar("V")


def merge_layers(pipe: Mapping[str, V], pipe_section: Mapping[str, V],
                 local: Mapping[str, V]) -> Dict[str, V]:
    """Options of a pipe machinetype by precedence: local section > [vacuum_pipe] > pipe.

    ``vacuum_pipe_url`` and ``target_share`` of the [vacuum_pipe] section are not inherited.
    """
    merged: Dict[str, V] = dict(pipe)
    merged.update({k: v for k, v in pipe_section.items()
                   if k not in ("vacuum_pipe_url", "target_share")})
    merged.update(local)
    return merged
