"""apel-sync from day summaries: equal to reading every record, after crashes, retries and
changes by hand; read only what it must (real files, the real accounting path)."""

from __future__ import annotations

import os

import pytest

from vac.adapters import apelspool, apelsummaries
from vac.core import apel
from vac.core import apelsummary as sm
from vac.paths import Paths
from vac.services import accounting
from tests.services.test_accounting import NOW, _run_child_dying_at, make_slot

SITE = "UKI-EXAMPLE"
HOST = "vac01.example.com/vac-factory1.example.com"
DAY = apel.record_name(NOW, "x")[0]
MONTH = DAY[:6]
OLD_NS = (NOW - 86400) * 10 ** 9            # a day directory last changed yesterday


def account(paths: Paths, *ordinals: int) -> None:
    for i in ordinals:
        accounting.account_machine(paths, make_slot(paths, i, uuid=f"u{i}"), now=NOW)


def by_hand(paths: Paths, name: str, site: str = SITE, host: str = HOST) -> str:
    path = os.path.join(paths.apel_archive, DAY, name)
    with open(path, "w") as f:
        f.write(f"APEL-individual-job-message: v0.3\nSite: {site}\nSubmitHost: {host}\n%%\n")
    return path


def count(paths: Paths, rescan: bool = False):
    messages: list = []
    return accounting.count_month(paths, MONTH, messages.append, rescan), messages


def saved(paths: Paths):
    return sm.from_json(apelsummaries.read_day_summary(paths.apel_summary, DAY))


def age_day(paths: Paths) -> None:
    """Pretend the day directory was last changed yesterday (as on most days)."""
    os.utime(os.path.join(paths.apel_archive, DAY), ns=(OLD_NS, OLD_NS))


class Reads:
    """Counts the record files apel-sync opens."""

    def __init__(self, monkeypatch):
        self.n = 0
        real = apelspool.read_head

        def counting(path, *args):
            self.n += 1
            return real(path, *args)

        monkeypatch.setattr(apelspool, "read_head", counting)


def test_archiving_keeps_the_summary_and_apel_sync_equals_reading_every_record(
        paths, monkeypatch):
    account(paths, 0, 1, 2)
    summary = saved(paths)
    assert summary.counts == {(SITE, HOST): 3} and summary.checked_ns == 0
    reads = Reads(monkeypatch)
    assert count(paths) == ((SITE, {HOST: 3}), [])
    assert reads.n == 0                         # racy summary: entries counted, none read
    assert count(paths, rescan=True) == ((SITE, {HOST: 3}), []) and reads.n == 3


def test_a_settled_day_is_trusted_without_listing_it(paths, monkeypatch):
    account(paths, 0, 1)
    age_day(paths)
    count(paths)                                # mtime moved: read again, saved checked
    assert sm.verdict(saved(paths), OLD_NS) == sm.TRUSTED
    reads = Reads(monkeypatch)
    monkeypatch.setattr(apelspool, "count_day_entries", None)     # would raise if called
    assert count(paths) == ((SITE, {HOST: 2}), []) and reads.n == 0


@pytest.mark.parametrize("change", ["add", "remove", "rename", "add-same-tick"])
def test_changes_by_hand_are_counted(paths, change):
    account(paths, 0, 1)
    age_day(paths)
    count(paths)                                # settled, trusted summary
    day_dir = os.path.join(paths.apel_archive, DAY)
    first = sorted(os.listdir(day_dir))[0]
    expected = {"add": 3, "remove": 1, "rename": 2, "add-same-tick": 3}[change]
    if change.startswith("add"):
        by_hand(paths, "ffffffffffffff")
    elif change == "remove":
        os.unlink(os.path.join(day_dir, first))
    else:
        os.rename(os.path.join(day_dir, first), os.path.join(day_dir, "00" + first[2:]))
    if change == "add-same-tick":               # the change hides in the same mtime
        os.utime(day_dir, ns=(OLD_NS, OLD_NS))
        assert sm.verdict(saved(paths), OLD_NS) == sm.TRUSTED
        (_site, counts), _m = count(paths)      # a checked summary is believed ...
        assert counts == {HOST: 2}
        assert count(paths, rescan=True)[0][1] == {HOST: 3}     # ... until --rescan
        return
    assert count(paths) == ((SITE, {HOST: expected}), [])


def test_same_tick_change_after_an_archive_write_is_caught_by_the_entry_count(paths):
    account(paths, 0)
    mtime = saved(paths).mtime_ns
    by_hand(paths, "ffffffffffffff")            # same tick as the factory's write
    os.utime(os.path.join(paths.apel_archive, DAY), ns=(mtime, mtime))
    assert count(paths)[0] == (SITE, {HOST: 2})


def test_messages_are_the_same_from_summaries(paths):
    account(paths, 0)
    by_hand(paths, "00000000000001", site="OLD-NAME")
    by_hand(paths, "00000000000002", site="")
    day2 = DAY[:6] + ("02" if DAY[6:] != "02" else "03")
    os.makedirs(os.path.join(paths.apel_archive, day2))
    with open(os.path.join(paths.apel_archive, day2, "00000000000003"), "w") as f:
        f.write(f"Site: {SITE}\n")
    first = count(paths, rescan=True)
    assert first[0] == (SITE, {HOST: 1}) and len(first[1]) == 3
    age_day(paths)
    count(paths)
    assert count(paths) == first


def test_failed_summary_write_leaves_it_stale_and_it_is_rebuilt(paths, monkeypatch):
    account(paths, 0)

    def full(*args):
        raise accounting.StateError("No space left on device")

    monkeypatch.setattr(apelsummaries, "write_day_summary", full)
    account(paths, 1)                           # archived; its summary not updated
    monkeypatch.undo()
    assert saved(paths).counts == {(SITE, HOST): 1}
    assert count(paths)[0] == (SITE, {HOST: 2})
    assert saved(paths).counts == {(SITE, HOST): 2}


def test_a_day_left_without_its_summary_gets_one_at_the_next_archive(paths, monkeypatch):
    """A kill after a new day directory was made but before its summary was written
    (crash points reap.archive-half, reap.summary-half) leaves the day without one: the
    next record archived makes it from the day's records; later ones are added to it."""
    account(paths, 0)
    os.unlink(os.path.join(paths.apel_summary, DAY + ".json"))
    account(paths, 1)
    assert saved(paths).counts == {(SITE, HOST): 2}
    account(paths, 2)
    assert saved(paths).counts == {(SITE, HOST): 3}
    reads = Reads(monkeypatch)
    assert count(paths) == ((SITE, {HOST: 3}), []) and reads.n == 0


@pytest.mark.parametrize("text", ["", "{not json", '{"format": 99}'])
def test_unreadable_summary_is_rebuilt(paths, text):
    account(paths, 0, 1)
    with open(os.path.join(paths.apel_summary, DAY + ".json"), "w") as f:
        f.write(text)
    assert count(paths)[0] == (SITE, {HOST: 2}) and saved(paths) is not None


def test_removed_day_directory_takes_its_summary_along(paths):
    account(paths, 0)
    day_dir = os.path.join(paths.apel_archive, DAY)
    for name in os.listdir(day_dir):
        os.unlink(os.path.join(day_dir, name))
    os.rmdir(day_dir)
    assert count(paths)[0] == (None, {})
    assert saved(paths) is None


@pytest.mark.parametrize("after", [False, True], ids=["before-call", "after-call"])
def test_crash_at_every_step_of_archiving_never_leaves_a_wrong_summary(tmp_path, after):
    """The child dies at each file-system call of accounting a machine while the day
    already has a summarised record; recovery and apel-sync then count exactly 2."""
    died = 0
    for step in range(1, 200):
        paths = Paths(root=str(tmp_path / f"{step}"))
        account(paths, 1)
        slot = make_slot(paths, 0, uuid="u0")
        if not _run_child_dying_at(paths, slot, step, after):
            break
        died += 1
        accounting.account_machine(paths, slot, now=NOW + 120)     # the next cycle
        accounting.account_machine(paths, slot, now=NOW + 180)
        assert count(paths)[0] == (SITE, {HOST: 2}), f"step {step}"
        assert count(paths, rescan=True)[0] == (SITE, {HOST: 2})
    assert died >= 10
