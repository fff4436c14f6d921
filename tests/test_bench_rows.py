"""The issue-15 summary of ``make bench``: ROW lines written, read back and tabulated
(no timing here: the figures are made up)."""

from __future__ import annotations

from bench import rows
from bench.run_all import BENCHMARKS, header


def test_a_written_row_reads_back_with_its_units():
    line = rows.row("3a", "planner decision, 1 creation", "4.2 ms", "193.0 ms", 4.2 / 193,
                    "<= 10 ms", True)
    assert line == ("ROW 3a | planner decision, 1 creation | vac 4.2 ms | baseline 193.0 ms"
                    " | ratio 0.022 | target <= 10 ms | met")
    assert rows.parse_line(line, "planner.txt") == rows.Row(
        "3a", "planner decision, 1 creation", "4.2 ms", "193.0 ms", "0.022", "<= 10 ms",
        "met", "planner.txt")


def test_other_lines_are_ignored_and_broken_rows_named():
    text = ("# bench_x on vm\nratio vac / baseline: 0.095\n"
            "ROW 4 | fill | vac 86.2 s | baseline 911.1 s | ratio 0.095 | target <= 0.2 x | met\n"
            "ROW 9 | too | few | fields\n"
            "ROW 9b | a | vac 1 s | baseline 2 s | ratio 0.5 | target t | maybe\n")
    found, bad = rows.parse(text, "fill.txt")
    assert [r.id for r in found] == ["4"]
    assert bad == ["ROW 9 | too | few | fields",
                   "ROW 9b | a | vac 1 s | baseline 2 s | ratio 0.5 | target t | maybe"]


def test_summary_orders_rows_by_number_and_skips_itself(tmp_path):
    def line(row_id, met=True):
        return rows.row(row_id, f"measure {row_id}", "1 s", "2 s", 0.5, "<= 1 x", met)
    (tmp_path / "a.txt").write_text(f"{line('12.7a')}\n{line('3b', False)}\n")
    (tmp_path / "b.txt").write_text(f"# head\n{line('3a')}\n{line('1a')}\nROW bad\n")
    (tmp_path / rows.SUMMARY).write_text(line("99") + "\n")
    found, bad = rows.collect(str(tmp_path))
    assert [r.id for r in found] == ["1a", "3a", "3b", "12.7a"]
    assert bad == ["b.txt: ROW bad"]
    text = rows.render(found, ["issue 15 rows, 2026-12-02", "host vm"], bad)
    lines = text.splitlines()
    assert lines[:3] == ["# issue 15 rows, 2026-12-02", "# host vm", "# 4 rows, 3 met"]
    assert lines[3].split() == ["1a", "met", "vac", "1", "s", "|", "baseline", "2", "s", "|",
                                "ratio", "0.500", "|", "target", "<=", "1", "x"]
    assert "NOT met" in lines[7] and lines[8].strip() == "measure 3b  [a.txt]"
    assert lines[-1] == "# unreadable ROW line in b.txt: ROW bad"


def test_run_all_knows_every_bench_and_heads_the_summary_with_the_machine():
    assert {"bench_responder", "bench_planner", "bench_fill", "bench_startup",
            "bench_httpd", "bench_apel_sync", "bench_memory",
            "bench_space_scale"} == set(BENCHMARKS)
    first, second = header(["all ran 5 s"])[:2]
    assert first.startswith("issue 15 benchmark rows, 20") and first.endswith("Z")
    assert " CPUs), Python 3." in second and "git commit " in second
