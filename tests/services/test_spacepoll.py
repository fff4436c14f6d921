"""Polling by subspaces over real UDP on 127.0.0.1: live responders, one of them answering
only the original way; the sums count every factory, floods and forged keys are refused."""

from __future__ import annotations

import json
import random
import time

import pytest

from vac.adapters import statereports
from vac.core import shares
from vac.core import subspaces as sub
from vac.core import vacquery as vq
from vac.paths import Paths
from vac.services import peers, spacepoll
from tests.services.respondertools import LiveResponder, add_machine, ask, make_cfg
from tests.services.test_vacquery_auth import KEY_FILE, install_key

NAMES = [f"factory{i}.example.com" for i in range(9)]
SUBSPACES = dict(subspace_min_factories=4, subspace_size=3)


@pytest.fixture
def space(tmp_path, request):
    """Nine factories with live responders; the last one speaks only the original way
    (no subspace options: it ignores the subspace field and answers plainly). "keyed":
    every factory has the space key (docs/VACQUERY.md), so every request and reply is
    signed and checked."""
    keyed = getattr(request, "param", "unkeyed") == "keyed"
    now = int(time.time())
    lives, cfgs, paths = {}, {}, {}
    try:
        for i, name in enumerate(NAMES):
            paths[name] = Paths(root=str(tmp_path / name))
            add_machine(paths[name], name, 0, "lhcb", now - 100, processors=1 + i % 3)
            add_machine(paths[name], name, 1, "atlas", now - 50, processors=2)
            extra = dict({} if name == NAMES[-1] else SUBSPACES)
            if keyed:
                install_key(paths[name])
                extra["query_key_file"] = KEY_FILE
            cfgs[name] = make_cfg(name, NAMES, **extra)
            lives[name] = LiveResponder(paths[name], cfgs[name]).__enter__()
        yield lives, cfgs, paths
    finally:
        for live in lives.values():
            live.control.request_stop()
        for live in lives.values():
            live.thread.join(5)


def resolver(lives):
    return lambda name: lives[name].address if name in lives else None


def running(reports):
    totals = shares.space_totals(reports, ["lhcb", "atlas"])
    return {mt: round(t.hs06, 2) for mt, t in totals.items()}


@pytest.mark.parametrize("space", ["unkeyed", "keyed"], indirect=True)
def test_sums_stand_for_subspaces_and_the_original_factory_is_still_counted(space):
    lives, cfgs, paths = space
    exact = peers.query_machinetypes(cfgs[NAMES[0]], resolver=resolver(lives), timeout=2,
                                     paths=paths[NAMES[0]])
    assert exact.complete and len(exact) == 9
    pollers = {n: spacepoll.SpacePoller() for n in NAMES[:-1]}
    polls = {}
    for cycle in range(2):          # cycle 0: no digests yet; cycle 1: members have them
        for name in NAMES[:-1]:
            polls[name] = spacepoll.poll_space(cfgs[name], time.time(), paths[name],
                                               random.Random(cycle), pollers[name],
                                               resolver=resolver(lives), timeout=2)
    lay = polls[NAMES[0]].layout
    assert lay is not None and len(lay.groups) == 3
    assert sum(p.by_sums for p in polls.values()) > 0
    original = next(i for i, g in enumerate(lay.groups) if NAMES[-1] in g)
    for name, poll in polls.items():
        assert name not in poll.reports             # its own report is the planner's
        assert running(dict(poll.reports, **{name: exact[name]})) == running(exact), name
        assert NAMES[-1] in poll.reports or NAMES[-1] in lay.groups[poll.layout.own] or \
            poll.by_sums, name
        assert poll.not_answered == []
    # a factory outside the original's subspace that used sums asked fewer than 9
    thrifty = [p for n, p in polls.items() if p.by_sums and p.layout.own != original]
    assert thrifty and min(p.asked for p in thrifty) < len(NAMES)
    if cfgs[NAMES[0]].settings.query_key_file:      # keyed: unsigned asking gets nothing
        msg = vq.request_dict(vq.MACHINETYPES_QUERY, "vac01.example.com", "c" * 64,
                              "04.00.00", "test")
        assert ask(lives[NAMES[0]].address, dict(msg, subspace=lay.keys[lay.own]),
                   expect=1, timeout=0.5) == []


def test_responder_answers_sums_only_for_its_fresh_digest(space):
    lives, cfgs, paths = space
    name = NAMES[0]
    spacepoll.poll_space(cfgs[name], time.time(), paths[name], random.Random(1),
                         spacepoll.SpacePoller(), resolver=resolver(lives), timeout=2)
    key = json.loads(statereports.read_subspace_digest(paths[name]))["key"]
    salt = vq.make_salt(b"\x02" * 32)

    def request(**extra):
        msg = vq.request_dict(vq.MACHINETYPES_QUERY, "vac01.example.com",
                              vq.cookie(salt, name), "04.00.00", "test")
        return dict(msg, **extra)

    replies = ask(lives[name].address, request(subspace=key), expect=2)
    assert {r["message_type"] for r in replies} == {vq.SUBSPACE_STATUS}
    assert all(r["subspace"] == key for r in replies)
    for forged in ("0" * 16, 12345, ["x"], None):          # another subspace, junk types
        replies = ask(lives[name].address, request(subspace=forged), expect=2, timeout=1)
        assert {r["message_type"] for r in replies} == {vq.MACHINETYPE_STATUS}, forged
    # the original factory ignores the field whatever it names
    replies = ask(lives[NAMES[-1]].address, request(subspace=key), expect=2, timeout=1)
    assert {r["message_type"] for r in replies} == {vq.MACHINETYPE_STATUS}


def test_a_peer_naming_many_machinetypes_cannot_make_a_flood(space, monkeypatch):
    """A peer of the own subspace reporting 500 machinetypes: the published digest keeps
    this factory's own first and at most MAX_DIGEST_MACHINETYPES, so one query is never
    answered by more datagrams than that."""
    lives, cfgs, paths = space
    name = NAMES[0]
    lay = sub.layout(NAMES, name, **dict(zip(("min_factories", "size"), SUBSPACES.values())))
    peer = next(f for f in lay.groups[lay.own] if f != name)
    flood = {f"mt{i}": {"running_hs06": 1.0} for i in range(500)}

    def poll(self, cfg, now, rng, **kw):
        return spacepoll.SpacePoll({peer: flood, name: {"lhcb": {"running_hs06": 2.0}}},
                                   lay)
    monkeypatch.setattr(spacepoll.SpacePoller, "poll", poll)
    spacepoll.poll_space(cfgs[name], time.time(), paths[name])
    state = json.loads(statereports.read_subspace_digest(paths[name]))
    assert len(state["machinetypes"]) == spacepoll.MAX_DIGEST_MACHINETYPES
    assert "lhcb" in state["machinetypes"]
    salt = vq.make_salt(b"\x03" * 32)
    msg = vq.request_dict(vq.MACHINETYPES_QUERY, "vac01.example.com", vq.cookie(salt, name),
                          "04.00.00", "test")
    replies = ask(lives[name].address, dict(msg, subspace=state["key"]), expect=1000,
                  timeout=1)
    assert len(replies) == spacepoll.MAX_DIGEST_MACHINETYPES


def test_without_the_option_the_factory_asks_everybody_as_before(monkeypatch, tmp_path):
    """Default settings: the gather step's poll is the all-peers query of Vac 03.01 (of
    the other factories; no subspace field sent, no digest written); with the option it
    polls by subspaces."""
    from vac.services import gather
    calls = []
    monkeypatch.setattr(peers, "query_machinetypes",
                        lambda cfg, **kw: calls.append(("all", kw)) or {})
    monkeypatch.setattr(spacepoll, "poll_space",
                        lambda cfg, now, paths: calls.append(("subspaces", paths)) or
                        spacepoll.SpacePoll({}))
    where = Paths(root=str(tmp_path))
    gather.peer_reports(make_cfg(NAMES[0], NAMES), where, 1.0)
    assert [(kind, {k: v for k, v in kw.items() if k != "on_reply"})
            for kind, kw in calls] == [("all", {"client_name": "vacd-factory",
                                                "factories": NAMES[1:], "paths": where})]
    assert statereports.read_subspace_digest(where) is None
    gather.peer_reports(make_cfg(NAMES[0], NAMES, **SUBSPACES), where, 1.0)
    assert calls[1] == ("subspaces", where)


def test_sums_count_only_from_the_member_asked_for_them():
    """A factory asked directly (own subspace) that answers with subspace_status bodies
    is not taken as a subspace's sums, nor as its own report."""
    cfg = make_cfg(NAMES[0], NAMES, **SUBSPACES)
    poller = spacepoll.SpacePoller()
    lay = poller.layout(sorted(NAMES), cfg)
    peer = next(f for f in lay.groups[lay.own] if f != NAMES[0])
    fake = {"message_type": vq.SUBSPACE_STATUS, "machinetype": "lhcb",
            "running_hs06": 1e6, "subspace": lay.keys[lay.own]}

    def query(cfg, request_type, factories, **kw):
        return peers.QueryResult({f: {"lhcb": fake if f == peer else {
            "message_type": vq.MACHINETYPE_STATUS, "machinetype": "lhcb",
            "running_hs06": 10.0}} for f in factories}, [])
    poll = poller.poll(cfg, time.time(), random.Random(1), query=query)
    assert poll.reports[peer] == {}
    assert running(poll.reports)["lhcb"] < 1e6
