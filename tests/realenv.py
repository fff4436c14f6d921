"""The `real_env` fixture: access to the real test environment made by tools/testenv.sh.

`tools/testenv.sh start` writes $TESTENV_DIR/env.json (default /var/tmp/vac-test-env). The
fixture reads it, takes an exclusive lock on $TESTENV_DIR/lock for the test's duration (there
is ONE libvirtd per machine, shared by everybody running tests) and returns a RealEnv.
Without env.json the test is skipped, or fails when VAC_REQUIRE_TESTENV=1 (set by make test).

Run as a script, this module is also the small HTTP server tests start inside the netns:
    python realenv.py serve --bind IP --port N --root DIR --put-dir DIR --log FILE
GET serves files under --root; PUT stores the body under --put-dir (same relative path);
every request is appended to --log as one JSON line.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

DEFAULT_TESTENV_DIR = "/var/tmp/vac-test-env"
LOCK_WAIT_SECONDS = 1800


def testenv_dir() -> str:
    return os.environ.get("TESTENV_DIR") or DEFAULT_TESTENV_DIR


def read_console(path: str) -> str:
    """A (serial console) log file as text without carriage returns; "" if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").replace("\r", "")
    except OSError:
        return ""


def console_tail(path: str, lines: int = 80) -> str:
    """The last `lines` lines of a (serial console) log file, for failure messages."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"<no console log {path}: {exc}>"
    tail = text.replace("\r", "").splitlines()[-lines:]
    return f"---- last {len(tail)} lines of {path} ----\n" + "\n".join(tail)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05,
             what: str = "condition") -> object:
    """Poll predicate until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class RealEnv:
    """Values of env.json plus helpers to run things inside the test network namespace."""

    def __init__(self, values: Dict[str, object]):
        self.values = dict(values)
        self.testenv_dir = str(values["testenv_dir"])
        self.netns = str(values["netns"])
        self.libvirt_uri = str(values["libvirt_uri"])
        self.volume_group = str(values["volume_group"])
        self.shim_bin = str(values["shim_bin"])
        self.guest_iso = str(values["guest_iso"])
        self.guest_kernel = str(values["guest_kernel"])
        self.guest_initrd = str(values["guest_initrd"])
        self.guest_cmdline = str(values.get("guest_cmdline", "console=ttyS0 panic=-1"))
        # the guest as a bootable disk (vm-raw); None when xorriso was missing at install
        self.guest_disk_qcow2: Optional[str] = values.get("guest_disk_qcow2")  # type: ignore
        self.guest_disk_raw: Optional[str] = values.get("guest_disk_raw")  # type: ignore
        self.env = dict(os.environ)
        self.env["PATH"] = self.shim_bin + os.pathsep + self.env.get("PATH", "/usr/sbin:/usr/bin")
        self.env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
        self._procs: List[subprocess.Popen] = []
        self._cleanups: List[Callable[[], None]] = []

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def netns_argv(self, argv: List[str], netns: Optional[str] = None) -> List[str]:
        """argv wrapped to run inside the test network namespace (or ``netns``)."""
        return ["ip", "netns", "exec", netns or self.netns, *argv]

    def run(self, argv: List[str], timeout: float = 60, netns: bool = False,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run a command (with the LV shim first in PATH), optionally inside the netns."""
        full = self.netns_argv(argv) if netns else list(argv)
        return subprocess.run(full, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check)

    def start_in_netns(self, argv: List[str], ready_line: Optional[str] = None,
                       timeout: float = 10, netns: Optional[str] = None) -> subprocess.Popen:
        """Start argv inside the netns (or ``netns``); stopped at teardown. With ready_line,
        wait until the process prints a stdout line starting with it (or fail with its
        output)."""
        proc = subprocess.Popen(self.netns_argv(argv, netns), env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._procs.append(proc)
        if ready_line is None:
            return proc
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                line = proc.stdout.readline()
                if line.startswith(ready_line):
                    return proc
                if line:
                    seen.append(line)
                    continue
            if proc.poll() is not None:
                break
        self.stop_process(proc)
        raise RuntimeError(f"{argv!r} not ready in the netns within {timeout} s: {''.join(seen)}")

    def serve_http(self, bind: str, port: int, root: str, put_dir: Optional[str] = None,
                   log: Optional[str] = None, netns: Optional[str] = None) -> subprocess.Popen:
        """Start this module's HTTP server inside the netns (or ``netns``) bound to bind:port
        (the address must already exist there, e.g. on virbr1 once vac's network is up)."""
        argv = [sys.executable, os.path.abspath(__file__), "serve", "--bind", bind,
                "--port", str(port), "--root", root]
        if put_dir:
            argv += ["--put-dir", put_dir]
        if log:
            argv += ["--log", log]
        return self.start_in_netns(argv, ready_line="READY", netns=netns)

    def add_address(self, cidr: str, dev: str = "virbr1") -> None:
        """Add an address to an interface inside the netns (idempotent)."""
        res = self.run(["ip", "addr", "add", cidr, "dev", dev], netns=True, check=False)
        if res.returncode != 0 and "File exists" not in res.stderr:
            raise RuntimeError(f"ip addr add {cidr} dev {dev} failed: {res.stderr.strip()}")

    def diagnostics(self) -> str:
        """Network namespace links/addresses and libvirt domains/networks, for failure text."""
        out = []
        for argv, netns in ((["ip", "-br", "addr"], True), (["bridge", "link"], True),
                            (["virsh", "-c", self.libvirt_uri, "list", "--all"], False),
                            (["virsh", "-c", self.libvirt_uri, "net-list", "--all"], False)):
            try:
                res = self.run(argv, timeout=10, netns=netns, check=False)
                text = (res.stdout + res.stderr).strip()
            except (OSError, subprocess.SubprocessError) as exc:
                text = f"<{exc}>"
            out.append(f"$ {' '.join(argv)}{' (in ' + self.netns + ')' if netns else ''}\n{text}")
        out.append("$ dnsmasq processes\n" + "\n".join(_dnsmasq_processes()))
        leases = "/var/lib/libvirt/dnsmasq/virbr1.status"
        try:
            with open(leases) as f:
                out.append(f"$ cat {leases}\n{f.read().strip()}")
        except OSError as exc:
            out.append(f"$ cat {leases}\n<{exc}>")
        return "---- test environment ----\n" + "\n".join(out)

    def lv_names(self) -> List[str]:
        """Names of the logical volumes in the test volume group (lvs through the shim)."""
        return self.run(["lvs", "--noheadings", "-o", "lv_name", self.volume_group]).stdout.split()

    def lv_path(self, name: str) -> str:
        return f"/dev/{self.volume_group}/{name}"

    def create_lv(self, name: str, size_mib: int = 64) -> str:
        """lvcreate through the shim; removed again at teardown. Returns the device path."""
        self.run(["lvcreate", "-y", "-L", f"{size_mib}M", "-n", name, self.volume_group])
        self.add_cleanup(lambda: self.remove_lv(name))
        return self.lv_path(name)

    def remove_lv(self, name: str) -> None:
        self.run(["lvremove", "-f", f"{self.volume_group}/{name}"], check=False)

    def add_cleanup(self, func: Callable[[], None]) -> None:
        """Register func to run (last registered first) when the test ends."""
        self._cleanups.append(func)

    @staticmethod
    def stop_process(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()

    def close(self) -> None:
        errors = []
        for func in reversed(self._cleanups):
            try:
                func()
            except Exception as exc:  # teardown boundary: run every cleanup, report all
                errors.append(f"{func!r}: {exc}")
        for proc in self._procs:
            self.stop_process(proc)
        self._cleanups.clear()
        self._procs.clear()
        if errors:
            raise RuntimeError("real_env cleanup failed: " + "; ".join(errors))


def _dnsmasq_processes() -> List[str]:
    """'PID STATE cmdline' of every dnsmasq (a killed one means no DHCP for the guests)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv and argv[0].endswith(b"dnsmasq"):
            found.append(f"{pid} {state} {b' '.join(argv).decode(errors='replace').strip()}")
    return found or ["<no dnsmasq running>"]


def _unavailable(message: str):
    import pytest
    if os.environ.get("VAC_REQUIRE_TESTENV") == "1":
        pytest.fail(f"real test environment required (VAC_REQUIRE_TESTENV=1) but {message}; "
                    "run 'make testenv' (tools/testenv.sh install && start) as root",
                    pytrace=False)
    pytest.skip(f"real test environment not available: {message}")


def _lock(path: str) -> int:
    from vacdemo.demoenv import flock_waiting     # the demo takes the same lock the same way
    try:
        return flock_waiting(path, LOCK_WAIT_SECONDS, 0.2)
    except TimeoutError as exc:
        raise TimeoutError(f"test environment lock {path} held for {LOCK_WAIT_SECONDS} s") \
            from exc


def load_env() -> RealEnv:
    """Lock the environment and read env.json (skips/fails the test when it is absent)."""
    tdir = testenv_dir()
    env_json = os.path.join(tdir, "env.json")
    if os.geteuid() != 0:
        _unavailable("the tests do not run as root")
    if not os.path.exists(env_json):
        _unavailable(f"{env_json} does not exist")
    fd = _lock(os.path.join(tdir, "lock"))
    try:
        with open(env_json) as f:  # re-read under the lock: a start may have run meanwhile
            values = json.load(f)
        env = RealEnv(values)
        if not os.path.exists(f"/run/netns/{env.netns}"):
            _unavailable(f"network namespace {env.netns} is missing (run tools/testenv.sh start)")
        if not os.path.exists("/run/libvirt/libvirt-sock"):
            _unavailable("libvirtd is not running (run tools/testenv.sh start)")
    except BaseException:
        os.close(fd)
        raise
    env.lock_fd = fd
    return env


def _real_env_fixture():
    env = load_env()
    try:
        yield env
    finally:
        try:
            env.close()
        finally:
            os.close(env.lock_fd)


try:
    import pytest as _pytest
except ImportError:  # running as the netns HTTP server without pytest around
    real_env = None
else:
    real_env = _pytest.fixture(_real_env_fixture, name="real_env")


# ---------------------------------------------------------------------------- HTTP server
def _local_path(base: Optional[str], url_path: str) -> Optional[str]:
    """The file under base for an URL path, or None when there is no base or it escapes."""
    rel = os.path.normpath(url_path.split("?", 1)[0].lstrip("/"))
    if not base or rel.startswith("..") or os.path.isabs(rel):
        return None
    return os.path.join(base, rel)


def _handler_class(root: str, put_dir: Optional[str], log: Optional[str]):
    """A request handler: GET from root, PUT into put_dir, one JSON line per request in log."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _answer(self, code: int, body: bytes, size: int) -> None:
            if log:
                with open(log, "a") as f:
                    f.write(json.dumps({"time": time.time(), "client": self.client_address[0],
                                        "method": self.command, "path": self.path,
                                        "code": code, "bytes": size}) + "\n")
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = _local_path(root, self.path)
            if path is None or not os.path.isfile(path):
                self._answer(404, b"not found\n", 0)
                return
            with open(path, "rb") as f:
                body = f.read()
            self._answer(200, body, len(body))

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = _local_path(put_dir, self.path)
            if path is None:
                self._answer(403, b"forbidden\n", len(body))
                return
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".part", "wb") as f:
                f.write(body)
            os.replace(path + ".part", path)
            self._answer(201, b"stored\n", len(body))

        def log_message(self, fmt: str, *fargs) -> None:
            pass  # requests go to the log file; nobody reads our stdout after READY

    return Handler


def _serve(argv: List[str]) -> None:
    import argparse
    import http.server
    import socketserver

    parser = argparse.ArgumentParser(prog="realenv.py serve")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--root", required=True)
    parser.add_argument("--put-dir")
    parser.add_argument("--log")
    args = parser.parse_args(argv)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((args.bind, args.port), _handler_class(args.root, args.put_dir, args.log))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve(sys.argv[2:])
    else:
        sys.exit("usage: realenv.py serve --bind IP --port N --root DIR [--put-dir DIR] [--log F]")
