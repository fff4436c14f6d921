"""vac apel-sync: month logic, record format, per-SubmitHost counts, bad input (SPEC §9.3)."""

from __future__ import annotations

import os

import pytest
from dirq.QueueSimple import QueueSimple

from vac.cli import main
from vac.cli import apel_cmd

HOST_A = "vac01.example.com/vac-factory1.example.com"
HOST_B = "vac01.example.com/vac-factory2.example.com"


def _archive(paths, day: str, name: str, site="UKI-EXAMPLE", host=HOST_A) -> None:
    directory = os.path.join(paths.apel_archive, day)
    os.makedirs(directory, exist_ok=True)
    lines = ["APEL-individual-job-message: v0.3"]
    if site:
        lines.append(f"Site: {site}")
    if host:
        lines.append(f"SubmitHost: {host}")
    with open(os.path.join(directory, name), "w") as f:
        f.write("\n".join(lines + ["LocalJobId: x", "%%"]) + "\n")


def _queued(paths):
    queue, texts = QueueSimple(paths.apel_outgoing), []
    for name in queue:
        queue.lock(name)
        data = queue.get(name)
        texts.append(data.decode() if isinstance(data, bytes) else data)
        queue.unlock(name)
    return sorted(texts)


def _sync(paths, *months):
    return main(["--root", paths.root, "apel-sync", *months])


def _sync_text(site, host, n, month, year):
    return (f"APEL-sync-message: v0.1\nSite: {site}\nSubmitHost: {host}\n"
            f"NumberOfJobs: {n}\nMonth: {month}\nYear: {year}\n%%\n")


def test_counts_per_month_and_submit_host(paths, capsys):
    for i in range(3):
        _archive(paths, "20230301", f"10000{i}00000000")
    _archive(paths, "20230315", "12000000000000", host=HOST_B)
    _archive(paths, "20230401", "10000000000000")
    assert _sync(paths, "202303", "202304") == 0
    assert _queued(paths) == sorted([_sync_text("UKI-EXAMPLE", HOST_A, 3, 3, 2023),
                                     _sync_text("UKI-EXAMPLE", HOST_B, 1, 3, 2023),
                                     _sync_text("UKI-EXAMPLE", HOST_A, 1, 4, 2023)])
    out = capsys.readouterr().out
    assert out.count("Created ") == 3 and paths.apel_outgoing in out


def test_skips_files_without_site_or_host_or_with_another_site(paths, capsys):
    _archive(paths, "20230302", "20000000000000")                 # newest defines the Site
    _archive(paths, "20230301", "10000000000001", site="OLD-NAME")
    _archive(paths, "20230301", "10000000000002", site=None)
    _archive(paths, "20230301", "10000000000003", host=None)
    _archive(paths, "20230301", ".tmp-halfwritten")
    _sync(paths, "202303")
    assert _queued(paths) == [_sync_text("UKI-EXAMPLE", HOST_A, 1, 3, 2023)]
    out = capsys.readouterr().out
    assert "Site changes from UKI-EXAMPLE to OLD-NAME - please fix" in out
    assert "No Site given in" in out and "No SubmitHost given in" in out


def test_bad_month_is_a_usage_error_and_queues_nothing(paths, capsys):
    _archive(paths, "20230301", "10000000000000")
    for bad in ("March", "202613", "202300"):
        assert _sync(paths, bad, "202303") == 2
        assert f"Cannot parse as YYYYMM: {bad}" in capsys.readouterr().err
    assert _queued(paths) == []


def test_empty_month(paths, capsys):
    _archive(paths, "20230301", "10000000000000")
    assert _sync(paths, "202302", "202303") == 0
    assert "No APEL records found for 202302" in capsys.readouterr().out
    assert len(_queued(paths)) == 1


def test_empty_archive_does_not_crash(paths, capsys):
    assert _sync(paths, "202303") == 0                           # B14
    assert "No APEL records found for 202303" in capsys.readouterr().out


@pytest.mark.parametrize("now,month", [(1_698_796_800 + 3600, "202310"),
                                       (1_698_796_800 + 86400 + 1, "202311")])
def test_default_month_is_utc_month_of_yesterday(paths, monkeypatch, capsys, now, month):
    _archive(paths, month + "01", "10000000000000")
    monkeypatch.setattr(apel_cmd.time, "time", lambda: now)
    _sync(paths)
    (text,) = _queued(paths)
    assert f"Month: {int(month[4:])}\n" in text and f"Year: {month[:4]}\n" in text
