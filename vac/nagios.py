"""check-vacd: a Nagios/NRPE plugin following the Monitoring Plugins guidelines (SPEC §8.2).

``check-vacd [--root DIR] [-w SECONDS] [-c SECONDS] [SECONDS]`` prints ONE line
``VACD <STATE> - <text> | <perfdata>`` and exits 0 (OK), 1 (WARNING), 2 (CRITICAL) or
3 (UNKNOWN). ``-c`` (or the positional SECONDS of the original) is the critical
heartbeat age, default 600; ``-w`` the warning age, default the critical one.

* CRITICAL: the factory or responder heartbeat file is missing or older than the
  critical age, ``config-error`` exists (the configuration is invalid: no machines are
  created; its first line names the first problem) or ``factory-error`` exists (its
  first line is reported);
* WARNING (new here): a heartbeat is older than the warning age, the metadata or MJF
  heartbeat is missing, or machinetypes are disabled (``machinetypes-disabled``) -
  running machines are unaffected; or "N APEL records pending": machines whose record is
  owed but not yet frozen, or frozen but not yet archived and queued (e.g. a full disk;
  the factory retries every cycle);
* UNKNOWN: vac is not installed (no state directory), the state directory is unreadable,
  the arguments are wrong, or the plugin itself failed.

With ``--query`` the plugin also asks the local responder for its factory_status over
VacQuery (on ``responder_bind_address``, else 127.0.0.1, signed with the space key if
``query_key_file`` is set, so it must then run as root): no valid answer is CRITICAL and
the answer time is added to the performance data (``responder_answer``).

Heartbeat age = now - the file's mtime (the roles rewrite the file; tests back-date mtime).
Performance data: running machines, running processors, running HS06 (from ``counts``)
and each role's heartbeat age in seconds (``U`` when missing), every heartbeat as
``ROLE_heartbeat_age=AGEs;WARN;CRIT;0`` (CRIT empty for the metadata and MJF roles,
which are never critical), then ``apel_records_pending=N;1;;0``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from vac import __version__
from vac.adapters.apelspool import pending_dirs
from vac.adapters.atomicfile import file_mtime
from vac.adapters.statefs import read_counts
from vac.adapters.statereports import read_config_report
from vac.paths import Paths

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
DEFAULT_SECONDS = 600
CRITICAL_ROLES = ("factory", "responder")
WARNING_ROLES = ("metadata", "mjf")

Counts = Tuple[int, int, int, int, float]


@dataclass(frozen=True)
class Thresholds:
    """Heartbeat ages in seconds: older than ``warning`` is WARNING, older than
    ``critical`` CRITICAL (factory and responder only)."""

    warning: int = DEFAULT_SECONDS
    critical: int = DEFAULT_SECONDS


@dataclass(frozen=True)
class Findings:
    """What the state directory says besides heartbeats (first lines; None if absent)."""

    factory_error: Optional[str] = None
    config_error: Optional[str] = None
    disabled: Optional[str] = None
    pending_records: int = 0            # machines whose APEL record is pending
    query_problem: Optional[str] = None     # --query: why the responder did not answer


def parse_seconds(text: Optional[str]) -> int:
    """The threshold argument: an integer number of seconds, else the default 600."""
    try:
        value = int(text) if text is not None else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS
    return value if value > 0 else DEFAULT_SECONDS


def counts_suffix(counts: Optional[Counts]) -> str:
    """`` (A/B C/D)``: running machines/slots, running processors/max processors."""
    if counts is None:
        return ""
    return f" ({counts[0]}/{counts[1]} {counts[2]}/{counts[3]})"


def heartbeat_problem(role: str, age: Optional[float], seconds: int) -> Optional[str]:
    """The SPEC §8.2 message for a missing or stale heartbeat, or None if fresh."""
    if age is None:
        return f"No vacd {role} heartbeat file"
    if age > seconds:
        return f"No vacd {role} heartbeat in {age / 3600.0:.2f} hours"
    return None


def pending_text(pending: int) -> str:
    return f"{pending} APEL record{'' if pending == 1 else 's'} pending"


def perfdata(ages: Dict[str, Optional[float]], counts: Optional[Counts],
             limits: Thresholds, pending: Optional[int] = None) -> str:
    """Monitoring Plugins performance data: 'label'=value[UOM];warn;crit;min;max, every
    heartbeat with the same fields in the same order."""
    items: List[str] = []
    if counts is not None:
        items += [f"running_machines={counts[0]};;;0;{counts[1]}",
                  f"running_processors={counts[2]};;;0;{counts[3]}",
                  f"running_hs06={counts[4]:g};;;0"]
    for role, age in ages.items():
        value = "U" if age is None else f"{int(age)}s"
        critical = limits.critical if role in CRITICAL_ROLES else ""
        items.append(f"{role}_heartbeat_age={value};{limits.warning};{critical};0")
    if pending is not None:
        items.append(f"apel_records_pending={pending};1;;0")
    return " ".join(items)


def evaluate(ages: Dict[str, Optional[float]], found: Findings, counts: Optional[Counts],
             limits: Thresholds) -> Tuple[int, str]:
    """Pure decision: (exit code, text) from heartbeat ages, state files and counts."""
    stale = {r: heartbeat_problem(r, ages.get(r), limits.critical) for r in CRITICAL_ROLES}
    critical = [p for p in stale.values() if p]
    if found.config_error is not None:
        critical.append(found.config_error or "config-error present")
    if found.factory_error is not None:
        critical.append(found.factory_error or "factory-error present")
    if found.query_problem is not None:
        critical.append(found.query_problem)
    warning = [p for p in (heartbeat_problem(r, ages.get(r), limits.warning)
                           for r in CRITICAL_ROLES + WARNING_ROLES if not stale.get(r)) if p]
    if found.disabled:
        warning.append(found.disabled)
    if found.pending_records > 0:
        warning.append(pending_text(found.pending_records))
    suffix = counts_suffix(counts)
    if critical:
        return CRITICAL, "; ".join(critical + warning) + suffix
    if warning:
        return WARNING, "Factory + responder ok but " + "; ".join(warning) + suffix
    return OK, "Factory + responder ok" + suffix


def format_line(code: int, text: str, perf: str = "") -> str:
    line = f"VACD {STATE_NAMES[code]} - {text}"
    return f"{line} | {perf}" if perf else line


# --- gathering (effects) ---------------------------------------------------------
def heartbeat_age(path: str, now: float) -> Optional[float]:
    """Seconds since ``path`` was last written, or None if it does not exist."""
    mtime = file_mtime(path)
    return None if mtime is None else max(0.0, now - mtime)


def read_factory_error(path: str) -> Optional[str]:
    """First line of ``factory-error``, "" if unreadable/empty, None if absent."""
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return ""


def query_responder(paths: Paths) -> Tuple[Optional[str], Optional[float]]:
    """Ask the local responder for factory_status: (problem or None, answer seconds)."""
    from vac.errors import VacError
    from vac.services import peers
    from vac.services.configload import load_config
    try:
        cfg = load_config(paths, pipes="none")
    except VacError as e:
        return "cannot read the configuration: " + str(e).replace("\n", "; "), None
    s = cfg.settings
    address = s.responder_bind_address if s.responder_bind_address not in (
        "", "0.0.0.0") else "127.0.0.1"
    start = time.monotonic()
    try:
        result = peers.query_factories(cfg, client_name="check-vacd",
                                       factories=[s.factory_hostname], paths=paths,
                                       resolver=lambda _name: (address, s.vacquery_port))
    except VacError as e:
        return f"cannot query the responder: {e}", None
    if not result.complete:
        return f"No VacQuery answer from the responder on {address}:{s.vacquery_port}", None
    return None, time.monotonic() - start


def check(paths: Paths, limits: Thresholds, now: float, query: bool = False
          ) -> Tuple[int, str]:
    """Run the check below ``paths`` (``query``: also ask the responder); (exit code,
    the one output line)."""
    state = paths.state_dir
    try:
        os.listdir(state)
    except (FileNotFoundError, NotADirectoryError):
        return UNKNOWN, format_line(UNKNOWN, f"vac is not installed ({state} does not exist)")
    except OSError as e:
        return UNKNOWN, format_line(UNKNOWN, f"cannot read {state}: {e.strerror or e}")
    ages = {role: heartbeat_age(paths.heartbeat(role), now)
            for role in CRITICAL_ROLES + WARNING_ROLES}
    counts = read_counts(paths)
    invalid, disabled = read_config_report(paths)
    pending = len(pending_dirs(paths.machines_dir))
    problem, answer_seconds = query_responder(paths) if query else (None, None)
    found = Findings(read_factory_error(paths.factory_error), invalid, disabled, pending,
                     problem)
    code, text = evaluate(ages, found, counts, limits)
    perf = perfdata(ages, counts, limits, pending)
    if query:
        perf += " responder_answer=" + ("U" if answer_seconds is None
                                        else f"{answer_seconds:.3f}s") + ";;;0"
    return code, format_line(code, text, perf)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors are UNKNOWN for plugins
        self.print_usage(sys.stderr)
        print(format_line(UNKNOWN, f"usage error: {message}"))
        sys.exit(UNKNOWN)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="check-vacd",
                description="Nagios/NRPE check of the local vacd (exit 0/1/2/3)")
    p.add_argument("-V", "--version", action="version", version=f"check-vacd {__version__}")
    p.add_argument("--root", default="/", metavar="DIR",
                   help="treat DIR as the root of every system path (default /)")
    p.add_argument("-w", "--warning", type=_positive, metavar="SECONDS",
                   help="heartbeat age for WARNING (default: the critical age)")
    p.add_argument("-c", "--critical", type=_positive, metavar="SECONDS",
                   help=f"heartbeat age for CRITICAL (default {DEFAULT_SECONDS})")
    p.add_argument("-q", "--query", action="store_true",
                   help="also ask the local responder over VacQuery (with the space key)")
    p.add_argument("seconds", nargs="?", metavar="SECONDS",
                   help="the critical age, as in the original check-vacd (-c wins)")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def thresholds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Thresholds:
    """-w/-c/SECONDS as Thresholds; a warning age above the critical one is a usage error."""
    critical = args.critical or parse_seconds(args.seconds)
    warning = args.warning or critical
    if warning > critical:
        parser.error(f"-w {warning} is greater than the critical age {critical}")
    return Thresholds(warning, critical)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    limits = thresholds(parser, args)
    try:
        code, line = check(Paths.from_root(args.root), limits, time.time(), query=args.query)
    except Exception as e:  # plugin boundary: any failure of the plugin itself is UNKNOWN
        code, line = UNKNOWN, format_line(UNKNOWN, f"check-vacd failed: {e}")
    print(line)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
