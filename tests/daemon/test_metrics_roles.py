"""vacd runs the metrics role only when metrics_address is set, and names the
multiprocess directory (emptied) in the roles' environment only then."""

from __future__ import annotations

import os

import pytest

from vac.vacd import daemon
from vac.adapters import prometheus
from vac.constants import DAEMON_ROLES
from vac.core.configtypes import Settings


def test_metrics_role_only_with_an_address():
    assert daemon.choose_roles(None, Settings("s.example.com")) == DAEMON_ROLES
    assert daemon.choose_roles(None, Settings("s.example.com", metrics_address="127.0.0.1:8995")) == \
        DAEMON_ROLES + ("metrics",)
    assert daemon.choose_roles("factory,metrics", Settings("s.example.com", metrics_address="127.0.0.1:1")) \
        == ("factory", "metrics")
    with pytest.raises(ValueError, match="metrics_address is not set"):
        daemon.choose_roles("metrics", Settings("s.example.com"))
    with pytest.raises(ValueError, match="subset of"):
        daemon.choose_roles("factory,prometheus", Settings("s.example.com"))


def test_prepare_metrics_empties_the_directory_and_sets_the_environment(paths, monkeypatch):
    monkeypatch.delenv(prometheus.ENV, raising=False)
    os.makedirs(paths.metrics_dir)
    stale = os.path.join(paths.metrics_dir, "counter_123.db")
    open(stale, "w").close()
    daemon.prepare_metrics(paths, DAEMON_ROLES + ("metrics",))
    assert os.environ[prometheus.ENV] == paths.metrics_dir and not os.path.exists(stale)
    daemon.prepare_metrics(paths, DAEMON_ROLES)
    assert prometheus.ENV not in os.environ


def test_start_config_without_any_valid_part_starts_without_metrics(paths):
    os.makedirs(os.path.dirname(paths.etc_vac_conf))
    with open(paths.etc_vac_conf, "w") as f:
        f.write("this is not an INI file\n")
    settings, problems = daemon.start_config(paths)
    assert problems and settings.metrics_address == "" and settings.log_destination == "files"
    assert daemon.choose_roles(None, settings) == DAEMON_ROLES
