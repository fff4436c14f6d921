"""Benchmark: VacQuery responder throughput and polling a space of 500 factories.

Run with ``.venv/bin/python -m bench.bench_responder [--seconds S] [--factories N]``.

1. Answers per second: a closed-loop client keeps W requests in flight against
   (a) the real responder role (``python -m vac.services.responder``, own process, a
   factory root with 2 slots) for factory_query, machinetypes_query and machines_query,
   and (b) a minimal Python UDP echo server (own process) as the baseline.
2. Space poll: N responders (``vac.services.responder.Responder`` objects, served from
   two worker processes with one selector loop each) on distinct loopback addresses
   127.0.x.y; time for ``peers.query_factories`` / ``query_machinetypes`` over all N.

Results go to ``bench/results/responder.txt``. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from types import MappingProxyType
from typing import Dict, List, Tuple

from vac.adapters import statefs
from vac.core import vacquery as vq
from vac.core.configtypes import Config, Machinetype, Settings
from vac.paths import Paths

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "responder.txt")
SPACE = "vac01.bench.test"
PORT = 19950
ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.bind(('127.0.0.1',int(sys.argv[1])))\n"
        "while True:\n d,a=s.recvfrom(2048)\n s.sendto(d,a)\n")


def make_root(root: str, factory: str, port: int) -> None:
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc", "vac.conf"), "w") as f:
        f.write(f"[settings]\nvac_space = {SPACE}\nfactory_hostname = {factory}\n"
                f"vacquery_port = {port}\ntotal_processors = 2\n\n"
                "[machinetype lhcb]\ntarget_share = 1\nroot_image = /i.img\n"
                "user_data = /u\n\n[machinetype atlas]\ntarget_share = 3\n"
                "root_image = /i.img\nuser_data = /u\n")
    paths = Paths(root)
    statefs.ensure_state_dirs(paths)
    statefs.write_counts(paths, 0, 2, 0, 2, 0.0)


def closed_loop(address: Tuple[str, int], payload: bytes, replies_per_request: int,
                seconds: float, window: int = 16) -> float:
    """Requests answered per second with ``window`` requests outstanding."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    for _ in range(window):
        sock.sendto(payload, address)
    answered = replies = 0
    end = time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < end:
        try:
            sock.recv(65535)
        except socket.timeout:
            for _ in range(window):
                sock.sendto(payload, address)       # refill after losses
            continue
        replies += 1
        if replies % replies_per_request == 0:
            answered += 1
            sock.sendto(payload, address)
    sock.close()
    return answered / (time.monotonic() - start)


def wait_port(address: Tuple[str, int], payload: bytes) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.2)
    for _ in range(100):
        sock.sendto(payload, address)
        try:
            sock.recv(65535)
            break
        except socket.timeout:
            continue
    sock.close()


def throughput(seconds: float) -> Dict[str, float]:
    results: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        factory = "factory1.bench.test"
        make_root(root, factory, PORT)
        procs = [subprocess.Popen([sys.executable, "-m", "vac.services.responder", "--root",
                                   root, "--bind", f"127.0.0.1:{PORT}"],
                                  stderr=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-c", ECHO, str(PORT + 1)])]
        try:
            def req(mtype):
                return vq.encode(vq.request_dict(mtype, SPACE, vq.cookie("s", factory), "b"))
            wait_port(("127.0.0.1", PORT), req(vq.FACTORY_QUERY))
            wait_port(("127.0.0.1", PORT + 1), b"x")
            results["echo server (baseline)"] = closed_loop(
                ("127.0.0.1", PORT + 1), req(vq.FACTORY_QUERY), 1, seconds)
            for mtype, count in ((vq.FACTORY_QUERY, 1), (vq.MACHINETYPES_QUERY, 2),
                                 (vq.MACHINES_QUERY, 2)):
                results[f"responder {mtype}"] = closed_loop(("127.0.0.1", PORT), req(mtype),
                                                            count, seconds)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    return results


def space_cfg(name: str, factories: List[str]) -> Config:
    mts = {"lhcb": Machinetype("lhcb", target_share=1),
           "atlas": Machinetype("atlas", target_share=3)}
    return Config(settings=Settings(vac_space=SPACE, factory_hostname=name,
                                    factories=tuple(factories), vacquery_port=PORT,
                                    total_processors=2, udp_timeout_seconds=30.0),
                  machinetypes=MappingProxyType(mts))


def address_of(i: int) -> str:
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


def serve_many(root: str, indices: List[int], names: List[str], ready) -> None:
    """Worker: one selector loop answering for the responders ``indices``."""
    from vac.services.responder import Responder
    selector = selectors.DefaultSelector()
    for i in indices:
        cfg = space_cfg(names[i], names)
        responder = Responder(Paths(root), load=lambda cfg=cfg: cfg,
                              bind=(address_of(i), PORT), snapshot_seconds=60.0)
        responder.refresh_config()
        responder.open()
        selector.register(responder.sock, selectors.EVENT_READ, responder)
    ready.set()
    while True:
        for key, _ in selector.select():
            try:
                data, peer = key.fileobj.recvfrom(2048)
            except BlockingIOError:
                continue
            key.data.handle(data, peer)


def space_poll(count: int, workers: int = 2) -> Dict[str, float]:
    import logging
    logging.disable(logging.WARNING)
    from vac.services import peers
    names = [f"f{i:03d}.bench.test" for i in range(count)]
    table = {n: (address_of(i), PORT) for i, n in enumerate(names)}
    results: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        statefs.ensure_state_dirs(Paths(root))
        statefs.write_counts(Paths(root), 0, 2, 0, 2, 0.0)
        ctx = multiprocessing.get_context("fork")
        procs = []
        for w in range(workers):
            ready = ctx.Event()
            proc = ctx.Process(target=serve_many, daemon=True,
                               args=(root, list(range(w, count, workers)), names, ready))
            proc.start()
            ready.wait(120)
            procs.append(proc)
        try:
            client = space_cfg("client.bench.test", names)
            for label, ask in (("factory_query", peers.query_factories),
                               ("machinetypes_query", peers.query_machinetypes)):
                for attempt in range(3):
                    start = time.monotonic()
                    result = ask(client, resolver=table.get)
                    elapsed = time.monotonic() - start
                    key = f"poll {count} {label} run {attempt + 1}"
                    results[key] = elapsed
                    results[key + " answered"] = len(result)
        finally:
            for proc in procs:
                proc.terminate()
                proc.join()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_responder")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--factories", type=int, default=500)
    args = parser.parse_args(argv)
    tput = throughput(args.seconds)
    poll = space_poll(args.factories)
    lines = [f"# bench_responder on {platform.node()} ({platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}), "
             f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}",
             f"# closed loop, 16 requests in flight, {args.seconds:.0f} s each "
             "(requests answered per second; machines/machinetypes = 2 datagrams each)"]
    base = tput["echo server (baseline)"]
    for label, value in tput.items():
        lines.append(f"{label:40s} {value:10.0f} /s  ({value / base:5.2f} x echo)")
    lines.append(f"# polling {args.factories} responders on distinct loopback addresses "
                 "(2 worker processes), seconds until every factory answered")
    for label, value in poll.items():
        lines.append(f"{label:40s} {value:10.3f}" if "answered" not in label
                     else f"{label:40s} {int(value):10d}")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
