"""``vac machines|machinetype|machinetypes|factories`` (SPEC §8.1): ask the space, print tables.

Text output is an aligned table (the original's columns plus a header line); ``-J`` prints
a JSON array of the raw replies in the same sorted order. The exit status is 0 only if
every factory answered completely; the ones that did not are named on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable, Iterable, List, Mapping, Optional

from vac.cli.common import usage_error
from vac.core.configtypes import Config
from vac.errors import VacError
from vac.machinemodels import kind_of
from vac.paths import Paths
from vac.services import peers


def register(subparsers) -> None:
    """Add the status sub-commands to the vac parser."""
    p = subparsers.add_parser("machines", help="one line per slot of every factory")
    p.add_argument("factories", nargs="*", metavar="FACTORY")
    p.set_defaults(func=_machines)
    p = subparsers.add_parser("machinetype", help="one machinetype at every factory")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("factories", nargs="*", metavar="FACTORY")
    p.set_defaults(func=_machinetype)
    p = subparsers.add_parser("machinetypes", help="every machinetype at every factory")
    p.add_argument("factories", nargs="*", metavar="FACTORY")
    p.set_defaults(func=_machinetypes)
    p = subparsers.add_parser("factories", help="one line per factory of the space")
    p.add_argument("factories", nargs="*", metavar="FACTORY")
    p.set_defaults(func=_factories)


# --- formatting (pure: replies + clock in, lines out) -----------------------------------

def short(name: Any) -> str:
    return str(name).split(".", 1)[0]


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) else default


def machine_status_field(reply: Mapping[str, Any], now: float) -> str:
    """The 21-character status column of ``vac machines``."""
    state = reply.get("state")
    started, heartbeat = reply.get("started_time"), reply.get("heartbeat_time")
    if state == "Running" and isinstance(started, (int, float)):
        text = "%5.2f hrs" % ((now - started) / 3600.0)
        if isinstance(heartbeat, (int, float)) and heartbeat > started:
            text += " %.1f%%" % (100.0 * _num(reply.get("cpu_seconds")) / (heartbeat - started))
        return text
    if state == "Starting" and isinstance(reply.get("created_time"), (int, float)):
        return "%5.2f mins" % ((now - reply["created_time"]) / 60.0)
    if state == "Shut down" and reply.get("shutdown_message"):
        return '"%s"' % str(reply["shutdown_message"])[:19]
    return ""


def machine_line(reply: Mapping[str, Any], now: float) -> str:
    state = str(reply.get("state") or "")
    cpu = "%5.1f%%" % _num(reply.get("cpu_percentage")) if state == "Running" else " " * 6
    processors = reply.get("num_cpus", reply.get("num_processors", 1))
    return "%-15s %-14.14s %-11.11s  %2d %s %-21.21s%s" % (
        short(reply.get("machine")), reply.get("machinetype") or "----------",
        "  " + state, int(_num(processors, 1)),
        kind_of(str(reply.get("machine_model") or "")),
        machine_status_field(reply, now), cpu)


def machines_lines(result: Mapping[str, Mapping[str, dict]], now: float) -> List[str]:
    lines = ["%-15s %-14s %-11s %3s %-2s %-21s%s" % (
        "MACHINE", "MACHINETYPE", "  STATE", "CPU", "  ", "STATUS", "  CPU%")]
    for factory in sorted(result):
        lines += [machine_line(result[factory][m], now) for m in sorted(result[factory])]
    return lines


def when(value: Any) -> str:
    """``DD Mon HH:MM:SS`` in local time, or ``-``."""
    if not isinstance(value, (int, float)) or value <= 0:
        return "-"
    return time.strftime("%d %b %H:%M:%S", time.localtime(value))


def machinetype_line(factory: str, reply: Mapping[str, Any]) -> str:
    machines = reply.get("running_machines", reply.get("total_machines", 0))
    hs06 = reply.get("running_hs06", reply.get("total_hs06", 0.0))
    return '%-15s %2d %5.1f %-15s "%s"' % (short(factory), int(_num(machines)), _num(hs06),
                                           when(reply.get("shutdown_time")),
                                           reply.get("shutdown_message") or "-")


def machinetype_lines(result: Mapping[str, Mapping[str, dict]], name: str) -> List[str]:
    lines = ['%-15s %2s %5s %-15s %s' % ("FACTORY", "LM", "HS06", "LAST FINISH", "MESSAGE")]
    for factory in sorted(result):
        if name in result[factory]:
            lines.append(machinetype_line(factory, result[factory][name]))
    return lines


def machinetypes_lines(result: Mapping[str, Mapping[str, dict]]) -> List[str]:
    lines = ['%-15s %-14s %3s %4s %7s %4s %-15s %s' % (
        "FACTORY", "MACHINETYPE", "LM", "CPU", "HS06", "NBF", "LAST FINISH", "MESSAGE")]
    for factory in sorted(result):
        for name in sorted(result[factory]):
            r = result[factory][name]
            lines.append('%-15s %-14.14s %3d %4d %7.1f %4d %-15s "%s"' % (
                short(factory), name, int(_num(r.get("running_machines"))),
                int(_num(r.get("running_processors", r.get("running_cpus")))),
                _num(r.get("running_hs06")), int(_num(r.get("num_before_fizzle"))),
                when(r.get("shutdown_time")), r.get("shutdown_message") or "-"))
    return lines


def factory_line(reply: Mapping[str, Any]) -> str:
    def pair(a: str, b: str) -> str:
        return "%d/%d" % (int(_num(reply.get(a))), int(_num(reply.get(b))))
    return '%-15s %7s %7s %6.2f %9d %9d %8d/%-8d "%s"' % (
        short(reply.get("factory")), pair("running_cpus", "total_cpus"),
        pair("running_machines", "total_machines"), _num(reply.get("load_average")),
        int(_num(reply.get("root_disk_avail_kb"))), int(_num(reply.get("vac_disk_avail_kb"))),
        int(_num(reply.get("mem_used_kb"))), int(_num(reply.get("mem_total_kb"))),
        reply.get("vac_version", ""))


def factories_lines(result: Mapping[str, dict]) -> List[str]:
    lines = ['%-15s %7s %7s %6s %9s %9s %17s %s' % (
        "FACTORY", "CPUS", "LMS", "LOAD", "ROOT_KB", "VAC_KB", "MEM_USED/TOTAL_KB",
        "VERSION")]
    return lines + [factory_line(result[f]) for f in sorted(result)]


def json_array(result: Mapping[str, Any], per_factory_map: bool) -> str:
    items: List[Any] = []
    for factory in sorted(result):
        if per_factory_map:
            items += [result[factory][k] for k in sorted(result[factory])]
        else:
            items.append(result[factory])
    return json.dumps(items, indent=2, sort_keys=True)


# --- commands ------------------------------------------------------------------------------

def load_cfg(args: argparse.Namespace) -> Optional[Config]:
    """The configuration without Vacuum Pipes (SPEC §8.1), or None after printing the error."""
    from vac.services.configload import load_config
    try:
        return load_config(Paths.from_root(args.root), pipes="none")
    except VacError as e:
        print(f"Reading configuration fails with error: {e}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace, ask: Callable[..., peers.QueryResult],
         render: Callable[[peers.QueryResult], Iterable[str]],
         as_json: Callable[[peers.QueryResult], str]) -> int:
    """Load the configuration, ask the space, print the answer (text or ``--json``)."""
    cfg = load_cfg(args)
    if cfg is None:
        return 1
    try:
        result = ask(cfg, client_name="vac-command", factories=args.factories or None,
                     timeout=args.timeout, space=args.space, paths=Paths.from_root(args.root))
    except VacError as e:
        print(f"Cannot query the space: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(as_json(result))
    else:
        for line in render(result):
            print(line)
    return report_missing(result)


def report_missing(result: peers.QueryResult) -> int:
    """Name the factories that did not answer (stderr); exit status 0 only if none."""
    for factory in result.missing:
        print(f"No reply from factory {factory}", file=sys.stderr)
    for factory in result.incomplete:
        print(f"Incomplete reply from factory {factory}", file=sys.stderr)
    return 0 if result.complete else 1


def _machines(args: argparse.Namespace) -> int:
    now = time.time()
    return _run(args, peers.query_machines, lambda r: machines_lines(r, now),
                lambda r: json_array(r, True))


def _machinetype(args: argparse.Namespace) -> int:
    name = args.name
    if not name:
        return usage_error("machinetype command requires an argument!")
    return _run(args, peers.query_machinetypes, lambda r: machinetype_lines(r, name),
                lambda r: json.dumps([r[f][name] for f in sorted(r) if name in r[f]],
                                     indent=2, sort_keys=True))


def _machinetypes(args: argparse.Namespace) -> int:
    return _run(args, peers.query_machinetypes, machinetypes_lines,
                lambda r: json_array(r, True))


def _factories(args: argparse.Namespace) -> int:
    return _run(args, peers.query_factories, factories_lines,
                lambda r: json_array(r, False))
