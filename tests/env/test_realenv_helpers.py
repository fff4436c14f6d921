"""Unit tests of the test-environment helpers that need neither root nor the environment:
the real_env skip/fail rule, the netns HTTP server, and the guest's vac-put/wget scripts
(run on the host with busybox, against that server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from tests import realenv

GUEST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "guest")


def test_missing_env_json_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTENV_DIR", str(tmp_path))
    monkeypatch.delenv("VAC_REQUIRE_TESTENV", raising=False)
    with pytest.raises(pytest.skip.Exception):
        realenv.load_env()


def test_missing_env_json_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTENV_DIR", str(tmp_path))
    monkeypatch.setenv("VAC_REQUIRE_TESTENV", "1")
    with pytest.raises(pytest.fail.Exception, match="VAC_REQUIRE_TESTENV=1"):
        realenv.load_env()


def test_netns_argv_and_shim_path():
    env = realenv.RealEnv({"testenv_dir": "/t", "netns": "vacns", "libvirt_uri": "qemu:///system",
                           "volume_group": "vg", "shim_bin": "/t/bin", "guest_iso": "/t/g.iso",
                           "guest_kernel": "/t/k", "guest_initrd": "/t/i"})
    assert env.netns_argv(["echo", "x"]) == ["ip", "netns", "exec", "vacns", "echo", "x"]
    assert env.env["PATH"].split(os.pathsep)[0] == "/t/bin"
    assert env.lv_path("vm00") == "/dev/vg/vm00"


def test_console_tail_names_a_missing_file(tmp_path):
    assert "no console log" in realenv.console_tail(str(tmp_path / "nope.log"))
    log = tmp_path / "c.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(100)))
    tail = realenv.console_tail(str(log), lines=3)
    assert tail.endswith("line 97\nline 98\nline 99")


@pytest.fixture
def server(tmp_path):
    """realenv.py's HTTP server on 127.0.0.1 (random port); yields (base URL, dirs)."""
    root, puts, log = tmp_path / "root", tmp_path / "puts", tmp_path / "requests.log"
    (root / "machinefeatures").mkdir(parents=True)
    (root / "machinefeatures" / "hs06").write_text("42\n")
    proc = subprocess.Popen([sys.executable, realenv.__file__, "serve", "--bind", "127.0.0.1",
                             "--port", "0", "--root", str(root), "--put-dir", str(puts),
                             "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        yield f"http://127.0.0.1:{line.split()[1]}", puts, log
    finally:
        realenv.RealEnv.stop_process(proc)


def test_server_get_put_and_log(server):
    base, puts, log = server
    assert urllib.request.urlopen(base + "/machinefeatures/hs06").read() == b"42\n"
    req = urllib.request.Request(base + "/joboutputs/a/b.txt", data=b"hello", method="PUT")
    assert urllib.request.urlopen(req).status == 201
    assert (puts / "joboutputs" / "a" / "b.txt").read_bytes() == b"hello"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(base + "/../../etc/passwd")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["method"], r["code"]) for r in records] == [("GET", 200), ("PUT", 201),
                                                           ("GET", 404)]


needs_busybox = pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox missing")


def guest_script(name: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run one of the guest's shell scripts with busybox sh, busybox applets first in PATH."""
    return subprocess.run(["busybox", "sh", os.path.join(GUEST_DIR, name), *args], input=stdin,
                          capture_output=True, timeout=30)


@needs_busybox
def test_vac_put_file_and_stdin(server, tmp_path):
    base, puts, _ = server
    f = tmp_path / "out.txt"
    f.write_bytes(b"x" * 5000 + b"\n")
    res = guest_script("vac-put", base + "/joboutputs/out.txt", str(f))
    assert res.returncode == 0, res
    assert res.stdout.decode().strip() == "HTTP/1.0 201 Created"
    assert (puts / "joboutputs" / "out.txt").read_bytes() == f.read_bytes()
    res = guest_script("vac-put", base + "/joboutputs/shutdown_message", stdin=b"100 bye\n")
    assert res.returncode == 0, res
    assert (puts / "joboutputs" / "shutdown_message").read_text() == "100 bye\n"


@needs_busybox
def test_vac_put_reports_refusal_and_no_server(server, tmp_path):
    base, _, _ = server
    f = tmp_path / "f"
    f.write_text("x")
    res = guest_script("vac-put", base + "/../outside", str(f))
    assert res.returncode == 1 and b"403" in res.stdout
    res = guest_script("vac-put", "http://127.0.0.1:1/x", str(f))
    assert res.returncode == 1 and b"no answer" in res.stdout


@needs_busybox
def test_wget_wrapper_drops_dash_T(server):
    base, _, _ = server
    res = guest_script("wget", "-q", "-T", "5", "-O", "-", base + "/machinefeatures/hs06")
    assert res.returncode == 0, res
    assert res.stdout == b"42\n"
