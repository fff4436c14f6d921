"""Space census: hourly factory_status files, one-day count, two-day expiry."""

from __future__ import annotations

import json
import os
import time

from vac.services import census
from vac.services.peers import QueryResult
from tests.services.respondertools import make_cfg, write

F1, F2 = "f1.example.com", "f2.example.com"


def fake_query(calls):
    def query(cfg, client_name, paths=None):
        calls.append(client_name)
        return QueryResult({F1: {"factory": F1, "max_processors": 8}}, [F2])
    return query


def test_census_hourly_with_expiry(paths):
    now = time.time()
    os.makedirs(paths.space_census)
    old, ancient = (os.path.join(paths.space_census, n) for n in ("old.x", "ancient.x"))
    write(old, "{}")
    os.utime(old, (now - 90000, now - 90000))        # kept, not counted
    write(ancient, "{}")
    os.utime(ancient, (now - 180000, now - 180000))  # deleted
    calls = []
    cfg = make_cfg(F1, [F1, F2])
    assert census.maybe_update(cfg, paths, now, query=fake_query(calls)) == 1
    assert calls == ["vacd-factory"]
    with open(os.path.join(paths.space_census, F1)) as f:
        assert json.load(f)["max_processors"] == 8
    assert os.path.exists(old) and not os.path.exists(ancient)
    assert census.maybe_update(cfg, paths, now + 60, query=fake_query(calls)) is None
    assert census.maybe_update(cfg, paths, now + 3700, query=fake_query(calls)) == 1
    assert len(calls) == 2


def test_space_capacity_catalogue_first_then_fresh_census(paths):
    now = time.time()
    os.makedirs(paths.space_census)
    write(paths.space_catalogue, json.dumps(
        {F1: {"max_processors": 2, "max_machines": 1, "max_hs06": 20.0}}))
    for name, age in ((F1, 0), (F2, 10), ("f3.example.com", 90000)):
        path = os.path.join(paths.space_census, name)
        write(path, json.dumps({"max_processors": 8, "max_machines": 8, "max_hs06": "x"}))
        os.utime(path, (now - age, now - age))
    totals = census.space_capacity(paths, now)
    assert totals == {F1: {"max_processors": 2.0, "max_machines": 1.0, "max_hs06": 20.0},
                      F2: {"max_processors": 8.0, "max_machines": 8.0, "max_hs06": 0.0}}
    write(paths.space_catalogue, "not json")
    assert set(census.space_capacity(paths, now)) == {F1, F2}
