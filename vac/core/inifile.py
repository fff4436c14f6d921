"""Raw INI parsing with Python 2 RawConfigParser semantics (SPEC §1.2), keeping file:line.

Rules reproduced: ``[section]`` headers (case-sensitive, text after ``]`` ignored);
``option = value`` or ``option: value`` with option names folded to lower case; a line
starting with white space continues the previous value (joined with a newline, blank
continuation lines dropped); blank lines and lines starting with ``#`` or ``;`` (or the word
``rem``) are comments; ``;`` starts an inline comment only when preceded by white space
(first line of a value only); no ``%`` interpolation; repeated sections are merged and a
repeated option keeps its first position but takes the value read last; ``[DEFAULT]``
options appear in every section unless the section sets them. Parse errors do not stop the
parse: they are collected as IniProblems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

DEFAULT_SECTION = "DEFAULT"
_SECTION_RE = re.compile(r"\[(?P<header>[^]]+)\]")
_OPTION_RE = re.compile(r"(?P<option>[^:=\s][^:=]*)\s*(?P<vi>[:=])\s*(?P<value>.*)$")


@dataclass(frozen=True)
class IniValue:
    """One option value and where its first line was read (1-based line)."""

    value: str
    file: str
    line: int


@dataclass(frozen=True)
class IniProblem:
    """A line that could not be parsed."""

    file: str
    line: int
    text: str


class IniDocument:
    """The merged content of several INI files, in reading order."""

    def __init__(self) -> None:
        self._sections: Dict[str, Dict[str, IniValue]] = {}
        self._headers: Dict[str, List[Tuple[str, int, str]]] = {}
        self.defaults: Dict[str, IniValue] = {}
        self.problems: List[IniProblem] = []

    def sections(self) -> List[str]:
        """Section keys in order of first appearance ([DEFAULT] excluded)."""
        return list(self._sections)

    def has_section(self, section: str) -> bool:
        return section in self._sections

    def headers(self, section: str) -> List[Tuple[str, int]]:
        """Every (file, line) where a header of ``section`` appeared, in reading order."""
        return [(f, n) for f, n, _ in self._headers.get(section, ())]

    def raw_headers(self, section: str) -> List[Tuple[str, int, str]]:
        """Every (file, line, header text as written) of ``section``, in reading order."""
        return list(self._headers.get(section, ()))

    def header(self, section: str) -> Optional[Tuple[str, int]]:
        """(file, line) of the first header of ``section``, or None."""
        found = self._headers.get(section)
        return (found[0][0], found[0][1]) if found else None

    def options(self, section: str, with_defaults: bool = True) -> Dict[str, IniValue]:
        """Options of ``section`` (merged with [DEFAULT] unless ``with_defaults`` is False)."""
        own = self._sections.get(section, {})
        if not with_defaults:
            return dict(own)
        merged = dict(self.defaults)
        merged.update(own)
        return merged

    def _open(self, key: str, where: Tuple[str, int, str]) -> Dict[str, IniValue]:
        if key == DEFAULT_SECTION:
            return self.defaults
        self._headers.setdefault(key, []).append(where)
        return self._sections.setdefault(key, {})


def parse_ini(sources: Iterable[Tuple[str, str]],
              section_key: Callable[[str], str] = lambda header: header) -> IniDocument:
    """Parse ordered ``(file name, text)`` sources into one merged IniDocument.

    ``section_key`` maps a header's text to the key under which its options are merged
    (e.g. lower-casing ``[machinetype Foo]``); [DEFAULT] is never passed through it.
    """
    document = IniDocument()
    for filename, text in sources:
        _parse_one(document, filename, text, section_key)
    return document


def _parse_one(document: IniDocument, filename: str, text: str,
               section_key: Callable[[str], str]) -> None:
    current: Optional[Dict[str, IniValue]] = None
    option: Optional[str] = None
    for number, line in enumerate(text.split("\n"), start=1):
        if _is_comment(line):
            continue
        if line[0].isspace() and current is not None and option:
            _continue_value(current, option, line.strip())
            continue
        header = _SECTION_RE.match(line)
        if header:
            name = header.group("header")
            key = name if name == DEFAULT_SECTION else section_key(name)
            current = document._open(key, (filename, number, name))
            option = None
            continue
        if current is None:
            document.problems.append(IniProblem(
                filename, number, "option outside any section (expected a [section] header first)"))
            continue
        match = _OPTION_RE.match(line)
        if not match:
            document.problems.append(IniProblem(
                filename, number, f"cannot parse line {line.strip()!r} (expected option = value)"))
            continue
        option = match.group("option").rstrip().lower()
        current[option] = IniValue(_first_value(match.group("value")), filename, number)


def _is_comment(line: str) -> bool:
    if line.strip() == "" or line[0] in "#;":
        return True
    first = line.split(None, 1)[0].lower()
    return first == "rem" and line[0] in "rR"


def _first_value(raw: str) -> str:
    position = raw.find(";")
    # Python 2 looks at raw[position - 1], which for position 0 is the last character
    if position != -1 and raw[position - 1].isspace():
        raw = raw[:position]
    value = raw.strip()
    return "" if value == '""' else value


def _continue_value(section: Dict[str, IniValue], option: str, more: str) -> None:
    if more:
        old = section[option]
        section[option] = IniValue(f"{old.value}\n{more}", old.file, old.line)
