"""Host networking commands around the NAT bridge (SPEC §4.1 step 6, §4.3, §4.4).

Uses ``ip`` (iproute2) and ``iptables-save`` through the runner, and psutil for stale
dnsmasq processes. ``prefix`` is prepended to every command, e.g.
``("ip", "netns", "exec", "vacns")`` when libvirtd and its bridge live in a namespace.
"""

from __future__ import annotations

import json
import logging
import signal
from typing import Callable, Dict, List, Sequence

from vac.adapters import runner
from vac.constants import FACTORY_ADDRESS, METADATA_ADDRESS, NAT_BRIDGE, NAT_NETWORK_ADDRESS
from vac.errors import CommandError

log = logging.getLogger(__name__)


class NetLink:
    """Address, firewall and clean-up commands for the vac bridge."""

    def __init__(self, run: Callable[..., runner.Result] = runner.run,
                 prefix: Sequence[str] = (), bridge: str = NAT_BRIDGE):
        self._run = run
        self.prefix = tuple(prefix)
        self.bridge = bridge

    def _cmd(self, argv: List[str], check: bool = True, timeout: float = 30.0) -> runner.Result:
        return self._run(list(self.prefix) + argv, timeout=timeout, check=check)

    def ensure_metadata_address(self, address: str = METADATA_ADDRESS) -> bool:
        """Add ``address``/16 to the bridge unless present; True if it was added.

        Raises CommandError if the bridge does not exist or the address cannot be added.
        """
        shown = self._cmd(["ip", "-o", "-4", "addr", "show", "dev", self.bridge]).stdout
        if f" {address}/" in shown:
            return False
        self._cmd(["ip", "addr", "add", f"{address}/16", "dev", self.bridge])
        log.info("added %s to %s", address, self.bridge)
        return True

    def iptables_save(self) -> str:
        """The output of ``iptables-save`` (stdout only; warnings go to stderr)."""
        return self._cmd(["iptables-save"]).stdout

    def iptables_restore(self, script: str) -> None:
        """Apply ``script`` with ``iptables-restore --noflush`` (one atomic commit per
        table; waits up to 10 s for the xtables lock). Raises CommandError."""
        self._run(list(self.prefix) + ["iptables-restore", "-w", "10", "--noflush"],
                  timeout=30.0, check=True, input_text=script)

    def bridge_ports(self) -> Dict[str, bool]:
        """{port device: isolated?} of the bridge (``ip -j -d link``).

        Raises CommandError if the bridge does not exist or the output is not JSON.
        """
        out = self._cmd(["ip", "-j", "-d", "link", "show", "master", self.bridge]).stdout
        try:
            links = json.loads(out or "[]")
        except ValueError as e:
            raise CommandError(["ip", "-j", "link"], 0, f"unexpected output: {e}") from e
        ports = {}
        for link in links:
            slave = (link.get("linkinfo") or {}).get("info_slave_data") or {}
            ports[link.get("ifname", "")] = bool(slave.get("isolated", False))
        return ports

    def set_port_isolated(self, device: str, isolated: bool) -> None:
        """``bridge link set dev DEVICE isolated on|off`` (raises CommandError)."""
        self._cmd(["bridge", "link", "set", "dev", device, "isolated",
                   "on" if isolated else "off"])

    def fix_networking(self) -> None:
        """SPEC §4.4 with iproute2: bring the bridge down, delete it, kill stale dnsmasq."""
        log.info("Trying to fix networking so can create %s bridge in next cycle", self.bridge)
        for argv in (["ip", "link", "set", self.bridge, "down"],
                     ["ip", "link", "delete", self.bridge]):
            log.info("Trying  %s", " ".join(argv))
            try:
                self._cmd(argv)
            except CommandError as e:
                log.info("ignoring: %s", e)
        import psutil       # only on this repair path (the factory's idle cycles skip it)
        for pid in stale_dnsmasq_pids():
            log.info("Trying  kill -9 %d (stale dnsmasq)", pid)
            try:
                psutil.Process(pid).send_signal(signal.SIGKILL)
            except psutil.Error as e:
                log.info("ignoring: %s", e)


def is_stale_dnsmasq(cmdline: Sequence[str]) -> bool:
    """True for dnsmasq command lines serving the vac network (SPEC §4.4)."""
    if not cmdline or not cmdline[0].endswith("dnsmasq"):
        return False
    args = list(cmdline[1:])
    joined = " ".join(args)
    if f"--listen-address {FACTORY_ADDRESS}" in joined or \
            f"--listen-address={FACTORY_ADDRESS}" in joined:
        return True
    return any(a.startswith("--conf-file=") and a.endswith(f"{NAT_NETWORK_ADDRESS}.conf")
               for a in args)


def stale_dnsmasq_pids() -> List[int]:
    import psutil
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if is_stale_dnsmasq(proc.info.get("cmdline") or []):
                pids.append(proc.info["pid"])
        except psutil.Error:
            continue
    return pids
