"""The access log: the original's line for every request, written in batches that keep
vacd's per-line prefix."""

from __future__ import annotations

import io
import logging
import os
import re

from vac.adapters.accesslog import AccessLog
from vac.vacd.logsetup import VacFormatter

PREFIX = r"[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \[\d+\]: "
ORIGINAL = (r'169\.254\.169\.(\d+) %d %d \[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] '
            r'"GET /latest/user-data HTTP/1\.1" 200 -' % (os.getpid(), os.getppid()))


def test_a_batch_is_one_record_with_every_line_prefixed():
    logger = logging.getLogger("test.accesslog")
    logger.propagate, stream = False, io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(VacFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        access = AccessLog(logger)
        for n in (3, 4, 5):
            access.add(f"169.254.169.{n}", "GET /latest/user-data HTTP/1.1", 200)
        access.note("factory1-05.example.com Wrote /var/lib/vac/machines/x/joboutputs/h")
        access.flush()
        access.flush()                                  # nothing left: no record
        lines = stream.getvalue().splitlines()
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 4
    assert [re.fullmatch(PREFIX + ORIGINAL, line).group(1) for line in lines[:3]] == \
        ["3", "4", "5"]
    assert re.fullmatch(PREFIX + "factory1-05.example.com Wrote /var/lib/vac/.*", lines[3])
