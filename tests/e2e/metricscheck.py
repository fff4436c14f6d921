"""The metrics side of the end-to-end test: a real Prometheus server (Debian's
``prometheus``) started inside the test network namespace, scraping the demo vacd's
metrics address every second with vac's alerting rules loaded, and the checks made
through its HTTP query API and against the files the factory wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from typing import Callable, Dict, List, Tuple

from tests.services.ctxhelpers import in_thread
from tests.services.test_metrics_role import check_exposition
from vacdemo import demo
from vac.adapters import prometheus
from vac.core.metrics import finish_code
from vac.paths import Paths

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMETHEUS_ADDRESS = "127.0.0.1:19090"       # inside the namespace, like the demo's vacd
RULES = os.path.join(REPO, "etc", "prometheus", "vac-rules.yml")
CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: vac
    static_configs:
      - targets: ["{target}"]
"""


def http_get(url: str, netns: str) -> bytes:
    """GET ``url`` from inside the namespace (the server listens on its loopback)."""
    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read()
    return in_thread(fetch, netns=netns)


class PrometheusServer:
    """``prometheus`` in the namespace; stopped (and its data removed) by the test."""

    def __init__(self, real_env, workdir: str):
        self.netns = real_env.netns
        self.url = f"http://{PROMETHEUS_ADDRESS}"
        os.makedirs(workdir, exist_ok=True)
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(CONFIG.format(rules=RULES, target=demo.METRICS_ADDRESS))
        self.log_path = os.path.join(workdir, "prometheus.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(real_env.netns_argv([
                shutil.which("prometheus") or "prometheus", f"--config.file={config}",
                f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
                f"--web.listen-address={PROMETHEUS_ADDRESS}"]),
                stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "prometheus exited:\n" + self.log()
            try:
                if b"Ready" in http_get(self.url + "/-/ready", self.netns):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError("prometheus not ready:\n" + self.log())

    def query(self, promql: str) -> List[Tuple[Dict[str, str], float]]:
        """(labels, value) of an instant query through the HTTP API."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = json.loads(http_get(url, self.netns))
        assert answer["status"] == "success", answer
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    def rules_healthy(self) -> List[str]:
        """Names of the loaded alerting rules whose evaluation is healthy."""
        answer = json.loads(http_get(self.url + "/api/v1/rules", self.netns))
        return [r["name"] for g in answer["data"]["groups"] for r in g["rules"]
                if r.get("health") == "ok"]

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --- the files, as the metrics must count them --------------------------------------

def running_by_machinetype(machines) -> Dict[str, int]:
    return dict(Counter(m.machinetype for m in machines
                        if m.ctime("started") is not None and not m.finished))


def wait_prometheus_sees_running_guests(prom: PrometheusServer, machines: Callable[[], list],
                                        alive: Callable[[], None], timeout: float = 120
                                        ) -> Dict[str, int]:
    """Until Prometheus' ``vac_machines{state="running"}`` (per machinetype) equals the
    machines the files show running, with at least one real guest running."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        alive()
        before = running_by_machinetype(machines())
        result = prom.query('vac_machines{state="running"} > 0')
        seen = {labels["machinetype"]: int(v) for labels, v in result}
        if before and seen == before == running_by_machinetype(machines()):
            return seen
        time.sleep(1)
    raise AssertionError(f"Prometheus saw {seen}, the files {before}\n{prom.log()}")


def disk_counts(machines, archived: int) -> Dict[Tuple[str, ...], float]:
    """Creations, finishes by code and APEL records according to the files."""
    counts: Dict[Tuple[str, ...], float] = Counter()
    for m in machines:
        if m.ctime("started") is not None:
            counts[("vac_creations_total", m.machinetype)] += 1
        if m.finished:
            counts[("vac_finishes_total", m.machinetype, finish_code(m.message))] += 1
    counts[("vac_apel_records_total",)] = archived
    return counts


def scrape_counts(text: str) -> Dict[Tuple[str, ...], float]:
    counts: Dict[Tuple[str, ...], float] = {}
    for name, labels, value in prometheus.parse_exposition(text):
        if value and name == "vac_creations_total":
            counts[(name, labels["machinetype"])] = value
        elif value and name == "vac_finishes_total":
            counts[(name, labels["machinetype"], labels["code"])] = value
        elif name == "vac_apel_records_total":
            counts[(name,)] = value
    return counts


def check_counters_equal_disk(netns: str, paths: Paths, machines: Callable[[], list],
                              archived: Callable[[], int]) -> str:
    """The scrape's creations, finishes by code and APEL records equal the files (read
    before and after the scrape, retried while a cycle changes them); returns the scrape."""
    for _ in range(15):
        before = disk_counts(machines(), archived())
        text = http_get(f"http://{demo.METRICS_ADDRESS}/metrics", netns).decode()
        if before == disk_counts(machines(), archived()):
            if scrape_counts(text) == before:
                return text
        time.sleep(1)
    raise AssertionError(f"metrics {scrape_counts(text)} != files {before}")


SCRAPE_FILE = os.path.join(os.environ.get("TESTENV_DIR", "/var/tmp/vac-test-env"),
                           "e2e_scrape.txt")


def check_scrape(text: str) -> None:
    """promtool accepts the live exposition; it has every name the dashboard and rules use.
    The scrape is kept in $TESTENV_DIR/e2e_scrape.txt for a look afterwards."""
    with open(SCRAPE_FILE, "w", encoding="utf-8") as f:
        f.write(text)
    check_exposition(text)
