"""Per-role log files: the vac line format, logrotate safety, journald fallback."""

from __future__ import annotations

import logging
import os
import re
import time

import pytest

from vac.vacd.logsetup import (SyslogPrefixFormatter, VacFormatter, format_timestamp, make_handler,
                          reset_handlers, setup_role_logging)

LINE = re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \[\d+\]: ")


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    reset_handlers()
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def _record(msg, level=logging.INFO, exc_info=None):
    return logging.LogRecord("vac.x", level, __file__, 1, msg, (), exc_info)


def test_timestamp_is_month_day_time_in_english(now):
    text = format_timestamp(now)
    assert re.fullmatch(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d "
                        r"\d\d:\d\d:\d\d", text)
    assert text.endswith(time.strftime("%H:%M:%S", time.localtime(now)))


def test_vac_format_and_levels():
    fmt = VacFormatter()
    line = fmt.format(_record("factory1-03.example.com created"))
    assert LINE.match(line) and line.endswith("]: factory1-03.example.com created")
    assert f"[{os.getpid()}]" in line
    assert "]: WARNING: low disk" in fmt.format(_record("low disk", logging.WARNING))


def test_tracebacks_follow_the_line():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys
        line = VacFormatter().format(_record("cycle failed", logging.ERROR, sys.exc_info()))
    first, rest = line.split("\n", 1)
    assert first.endswith("ERROR: cycle failed") and "RuntimeError: boom" in rest


def test_role_log_survives_logrotate(paths):
    streams = setup_role_logging(paths, "factory")
    assert len(streams) == 1
    log = logging.getLogger("vac.services.factory")
    log.info("before rotation")
    os.rename(paths.log_file("factory"), paths.log_file("factory") + ".1")
    log.info("after rotation")
    with open(paths.log_file("factory") + ".1", encoding="utf-8") as f:
        assert "before rotation" in f.read()
    with open(paths.log_file("factory"), encoding="utf-8") as f:
        text = f.read()
    assert "after rotation" in text and "before" not in text
    assert LINE.match(text)


def test_journald_fallback_prefixes_priority(paths, monkeypatch):
    import vac.vacd.logsetup as logsetup
    monkeypatch.setattr(logsetup, "_journal_handler", lambda ident: None)
    handler = make_handler(paths, "responder", "journald")
    assert isinstance(handler.formatter, SyslogPrefixFormatter)
    text = handler.formatter.format(_record("a\nb", logging.WARNING))
    assert text == (f"<4>vacd-responder[{os.getpid()}]: a\n"
                    f"<4>vacd-responder[{os.getpid()}]: b")
    assert not os.path.exists(paths.log_file("responder"))


def test_unknown_destination_is_rejected(paths):
    with pytest.raises(ValueError, match="log_destination"):
        make_handler(paths, "mjf", "syslog")
