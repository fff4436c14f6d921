"""The metrics role over real HTTP on the loopback, with counts written by other real
processes (prometheus_client's multiprocess files); the exposition passes `promtool check
metrics`; the dashboard and the alerting rules use only metric names a real scrape has;
/status.json says what the responder would."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.realenv import wait_for
from tests.services.ctxhelpers import FACTORY, make_machine, request
from vac.adapters import prometheus, statefs, statereports
from vac.core import metrics as catalogue
from vac.core import vacquery as vq
from vac.core.configtypes import Config
from vac.core import planner, shares
from vac.services import cyclereport, factory, metrics_hooks, metrics_role, responder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "etc", "grafana", "vac-dashboard.json")
RULES = os.path.join(REPO, "etc", "prometheus", "vac-rules.yml")
promtool = pytest.mark.skipif(not shutil.which("promtool"),
                              reason="promtool not installed (tools/install-deps.sh)")


CONF = """[settings]
vac_space = vac01.example.com
factory_hostname = factory1.example.com
factories = factory1.example.com factory2.example.com
total_processors = 2
metrics_address = 127.0.0.1:{port}

[machinetype lhcb-prod]
target_share = 3
root_image = /images/lhcb.iso

[machinetype atlas]
target_share = 1
root_image = /images/atlas.iso
"""
ROLE = """import signal, sys
from vac.paths import Paths
from vac.rolecontrol import RoleControl
from vac.services import metrics_role
control = RoleControl()
signal.signal(signal.SIGTERM, lambda *_: control.request_stop())
metrics_role.run_role(Paths.from_root(sys.argv[1]), control)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def multiproc(tmp_path):
    """A multiprocess directory, named in the environment of the processes started here
    as vacd names it for its roles (prometheus_client reads it when first imported)."""
    directory = str(tmp_path / "multiproc")
    prometheus.reset_directory(directory)
    return directory


def role_env(directory: str) -> dict:
    return dict(os.environ, PYTHONPATH=REPO, **{prometheus.ENV: directory})


def count_in_another_process(directory: str, *calls: str) -> None:
    """Run metrics_hooks calls in a fresh Python process that then exits (dies)."""
    code = "from vac.services import metrics_hooks as h\n" + "\n".join(calls)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60,
                   env=role_env(directory))


def config(paths) -> Config:
    from vac.services.configload import load_config
    return load_config(paths, pipes="none")


@pytest.fixture
def served(paths, multiproc):
    """The metrics role in a process of its own (as vacd runs it) on a free port."""
    os.makedirs(paths.state_dir, exist_ok=True)
    os.makedirs(os.path.dirname(paths.etc_vac_conf), exist_ok=True)
    port = free_port()
    with open(paths.etc_vac_conf, "w", encoding="utf-8") as f:
        f.write(CONF.format(port=port))
    make_machine(paths, 0, machinetype="lhcb-prod")
    make_machine(paths, 1, machinetype="atlas")
    statefs.write_counts(paths, 2, 4, 2, 2, 2.0)
    proc = subprocess.Popen([sys.executable, "-c", ROLE, paths.root], cwd=REPO,
                            env=role_env(multiproc))
    try:
        addr = ("127.0.0.1", port)
        wait_for(lambda: _listening(addr), timeout=30, what="the metrics role to listen")
        yield addr
    finally:
        proc.terminate()
        proc.wait(30)


def _listening(addr) -> bool:
    try:
        socket.create_connection(addr, timeout=1).close()
        return True
    except OSError:
        return False


def scrape(addr) -> str:
    status, headers, body = request(addr, "GET", "/metrics", source="127.0.0.1")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return body.decode()


def samples(text: str):
    return prometheus.parse_exposition(text)


def value(text: str, name: str, **labels) -> float:
    hits = [v for n, lab, v in samples(text) if n == name and lab == labels]
    assert len(hits) == 1, (name, labels)
    return hits[0]


def test_counts_of_other_processes_add_up_and_outlive_them(served, multiproc):
    count_in_another_process(multiproc, 'h.count("creations", machinetype="lhcb-prod")',
                             'h.count("creations", machinetype="lhcb-prod")',
                             'h.count("finishes", machinetype="atlas", code="300")')
    count_in_another_process(multiproc, 'h.count("creations", machinetype="lhcb-prod")',
                             'h.count("role_restarts", role="responder")',
                             'h.observe_cycle(1.25)')
    text = scrape(served)
    assert value(text, "vac_creations_total", machinetype="lhcb-prod") == 3
    assert value(text, "vac_creations_total", machinetype="atlas") == 0      # seeded at 0
    assert value(text, "vac_finishes_total", machinetype="atlas", code="300") == 1
    assert value(text, "vac_role_restarts_total", role="responder") == 1
    assert value(text, "vac_cycle_duration_seconds_count") == 1
    assert value(text, "vac_machines", machinetype="lhcb-prod", state="running") == 0
    assert value(text, "vac_machines", machinetype="atlas", state="starting") == 1
    assert value(text, "vac_slots") == 4 and value(text, "vac_slots_free") == 2
    assert "# HELP vac_creations_total Machines created" in text    # not "Multiprocess metric"


def test_no_label_carries_a_machine_name_or_uuid(served):
    for name, labels, _ in samples(scrape(served)):
        for label_value in labels.values():
            assert "uuid" not in label_value and "factory1-" not in label_value, (name, labels)




def names_used(expressions) -> set:
    return {n for e in expressions for n in re.findall(r"\bvac_[a-z0-9_]+", e)}


def check_exposition(text: str) -> None:
    """promtool (if installed) accepts ``text``; it has every metric name the dashboard
    and the alerting rules use."""
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "metrics"], input=text,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and not result.stdout.strip(), \
            result.stdout + result.stderr
    scraped = {name for name, _, _ in samples(text)}
    dash, exprs = dashboard_exprs()
    used = names_used(exprs + rule_exprs() +
                      [v["definition"] for v in dash["templating"]["list"] if "definition" in v])
    assert used and used <= scraped, used - scraped


def dashboard_exprs():
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    return dash, [t["expr"] for p in dash["panels"] for t in p["targets"]]


def rule_exprs():
    with open(RULES, encoding="utf-8") as f:
        return re.findall(r"^\s+expr: (.+)$", f.read(), re.M)


def write_a_cycle_report(paths) -> None:
    """last-cycle.json as the factory writes it after a cycle that ranked machinetypes."""
    cfg, now = config(paths), time.time()
    plan = planner.Plan(standings=shares.standings(cfg, {}, now), vetoes=["no free slot"])
    result = factory.CycleResult(now - 2, config=cfg, plan=plan,
                                 peers=cyclereport.peer_states(cfg, {FACTORY: {}}))
    cyclereport.write(paths, result, 2.0)


@promtool
def test_exposition_passes_promtool_and_has_what_dashboard_and_rules_use(served, paths,
                                                                         multiproc):
    write_a_cycle_report(paths)
    count_in_another_process(multiproc, 'h.count("vetoes", reason="slots")')
    check_exposition(scrape(served))


def test_dashboard_covers_the_questions_sites_ask():
    dash, exprs = dashboard_exprs()
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for topic in ("share", "machines by machinetype and state", "fizzles", "back-off",
                  "cycle time", "apel backlog"):
        assert topic in titles, topic
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]


@promtool
def test_alerting_rules_pass_promtool():
    result = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = re.findall(r"alert: (\w+)", open(RULES, encoding="utf-8").read())
    for wanted in ("VacFactoryNotCycling", "VacAllMachinetypesBackingOff",
                   "VacApelRecordsPending", "VacRoleRestarting"):
        assert wanted in alerts


def test_status_json_is_what_the_responder_would_say(served, paths):
    statereports.write_cycle_report(paths, {"time": 1.0, "end": 2.5, "duration_seconds": 1.5,
                                       "plan": {"vetoes": ["no free slot"], "standings": []},
                                       "peers": {"answering": [FACTORY], "silent": []}})
    status, headers, body = request(served, "GET", "/status.json", source="127.0.0.1")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["factory"] == FACTORY and doc["plan"]["vetoes"] == ["no free slot"]
    assert doc["last_cycle"]["duration_seconds"] == 1.5
    cfg = config(paths)
    want = responder.local_bodies(cfg, paths, vq.MACHINE_STATUS, doc["time"])
    assert [(m["machine"], m["machinetype"], m["uuid"]) for m in doc["machines"]] == \
        [(b["machine"], b["machinetype"], b["uuid"]) for b in want]
    assert {m["machinetype"] for m in doc["machinetypes"]} == {"lhcb-prod", "atlas"}
    assert doc["factories"][0]["message_type"] == vq.FACTORY_STATUS
    for message in doc["machines"] + doc["machinetypes"] + doc["factories"]:
        assert vq.validate_response(message) == [], message


def test_other_paths_and_methods_refused(served):
    assert request(served, "GET", "/", source="127.0.0.1")[0] == 404
    assert request(served, "GET", "/metrics/../etc/passwd", source="127.0.0.1")[0] == 404
    assert request(served, "POST", "/metrics", body=b"x", source="127.0.0.1")[0] == 405
    assert request(served, "HEAD", "/metrics", source="127.0.0.1")[0] == 200


def test_bound_only_to_the_configured_address(served):
    host, port = served
    assert host == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()


def test_metrics_off_imports_nothing_and_counts_nothing(tmp_path):
    """Without vacd's multiprocess directory in the environment no role imports
    prometheus_client (memory) and counting is a no-op."""
    code = ("import sys\nfrom vac.services import metrics_hooks as h\n"
            "h.count('creations', machinetype='x'); h.observe_cycle(1.0)\n"
            "print(h.enabled(), 'prometheus_client' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != prometheus.ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env=dict(env, PYTHONPATH=REPO), timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_broken_counter_turns_counting_off_without_raising(multiproc, monkeypatch,
                                                             caplog):
    monkeypatch.setenv(prometheus.ENV, multiproc)
    metrics_hooks.reset()
    try:
        metrics_hooks.count("creations", machinetype="lhcb")      # works
        metrics_hooks.count("finishes", machinetype="lhcb")       # a label is missing
        assert not metrics_hooks.enabled()
        assert "this process counts nothing more" in caplog.text
        metrics_hooks.count("creations", machinetype="lhcb")      # silently a no-op now
    finally:
        metrics_hooks.reset()


def test_catalogue_is_the_single_source_of_help_texts(served):
    text = scrape(served)
    for metric in catalogue.COUNTED + catalogue.STATE:
        if metric.name in ("machinetype_score", "machinetype_backoff",
                           "machinetype_backoff_end_timestamp_seconds",
                           "machinetype_last_abort_timestamp_seconds",
                           "last_cycle_timestamp_seconds", "last_cycle_duration_seconds",
                           "peers"):
            continue                              # need a factory cycle (tested in core)
        assert f"# HELP {metric.exposed_name} {metric.help}" in text, metric.name
