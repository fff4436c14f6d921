"""``python -m vacdemo.demo config|clean``, the demo watcher and the demo environment helpers."""

from __future__ import annotations

import os

from vacdemo import demo, demoenv
from vacdemo.demowatch import Watcher, timeline, timeline_text
from vac.paths import Paths
from vac.services.configload import load_config


def test_demo_run_writes_valid_config_and_clean_removes_it(tmp_path, capsys):
    root = str(tmp_path / "demo")
    assert demo.main(["config", "--root", root, "--no-containers"]) == 0
    out = capsys.readouterr().out
    assert "Configuration OK: 2 machinetype(s)" in out
    cfg = load_config(Paths(root), processor_count=2, pipes="none")
    assert cfg.settings.vac_space == "demo.vac.test"
    assert "." in cfg.settings.factory_hostname
    assert cfg.settings.domain_type == "qemu"
    shares = sorted(m.target_share for m in cfg.machinetypes.values())
    assert shares == [1.0, 2.0]
    assert demo.main(["clean", "--root", root]) == 0
    assert not os.path.exists(root)


def test_demo_config_with_the_container_machinetype_is_valid(tmp_path):
    root = str(tmp_path / "demo")
    demo.write_demo_tree(root, demoenv.DemoEnv(), "qemu", "localhost/vac-demo:0123")
    cfg = load_config(Paths(root), processor_count=2, pipes="none")
    cont = cfg.machinetypes["cont"]
    assert cont.machine_model == "docker" and cont.root_image == "docker://localhost/vac-demo:0123"
    assert sorted(m.target_share for m in cfg.machinetypes.values()) == [1.0, 1.0, 2.0]
    files = os.path.join(Paths(root).machinetype_dir("cont"), "files")
    assert os.listdir(files) == ["cont.user_data"]
    assert demo.read_state(root)["container_image"] == "localhost/vac-demo:0123"


def test_clean_refuses_non_demo_directories(tmp_path):
    (tmp_path / "precious").write_text("x")
    assert demo.main(["clean", "--root", str(tmp_path)]) == 1
    assert (tmp_path / "precious").exists()
    assert demo.main(["clean", "--root", str(tmp_path / "absent")]) == 0


def test_demo_config_and_user_data_golden(golden):
    env = demoenv.DemoEnv(guest_iso="/var/tmp/vac-test-env/guest/vac-test-guest.iso")
    golden.check(demo.render_config("vm.demo.vac.test", env, "qemu", "qemu (TCG): test",
                                    "localhost/vac-busybox-guest:0123456789ab"),
                 "demo/10-demo.conf")
    for name, text in sorted(demo.user_data_files().items()):
        golden.check(text, f"demo/{name}.user_data")


def test_factory_hostname_keeps_fqdn_else_adds_demo_domain():
    assert demo.factory_hostname("wn01.example.org") == "wn01.example.org"
    assert demo.factory_hostname("VM") == "vm.demo.vac.test"
    assert demo.factory_hostname("") == "localhost.demo.vac.test"


def test_domain_type_is_kvm_only_when_kvm_can_run_guests(tmp_path):
    kvm, cpuinfo, sysmod = tmp_path / "kvm", tmp_path / "cpuinfo", tmp_path / "module"
    sysmod.mkdir()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vmx sse\n")
    choose = lambda: demoenv.choose_domain_type(str(kvm), str(cpuinfo), str(sysmod))  # noqa
    assert choose()[0] == "qemu"                           # no /dev/kvm
    kvm.write_text("")
    assert choose()[0] == "kvm"
    (sysmod / "kvm_pvm").mkdir()
    assert choose() == ("qemu", f"qemu (TCG): {kvm} is kvm_pvm (software nested "
                                "virtualisation) and cannot run stock guests")
    (sysmod / "kvm_pvm").rmdir()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse\n")
    assert choose()[0] == "qemu"


def test_hosts_line_only_inside_the_namespace(tmp_path):
    host_hosts, etc_netns = tmp_path / "hosts", tmp_path / "netns"
    host_hosts.write_text("127.0.0.1 localhost")
    add = lambda: demoenv.add_hosts_line("vm.demo.vac.test", "vacns",  # noqa: E731
                                         str(etc_netns), str(host_hosts))
    assert add() is True and add() is False                  # made once, line added once
    ns_hosts = etc_netns / "vacns" / "hosts"
    assert ns_hosts.read_text() == ("127.0.0.1 localhost\n127.0.0.1 vm.demo.vac.test "
                                    "# added by vac demo\n")
    assert host_hosts.read_text() == "127.0.0.1 localhost"   # the host's file untouched
    demoenv.remove_hosts_line("vacns", True, str(etc_netns))
    demoenv.remove_hosts_line("vacns", True, str(etc_netns))
    assert not etc_netns.joinpath("vacns").exists()
    (etc_netns / "vacns").mkdir()
    ns_hosts.write_text("10.0.0.1 other\n")                  # a site's own netns hosts file
    assert add() is False
    demoenv.remove_hosts_line("vacns", False, str(etc_netns))
    assert ns_hosts.read_text() == "10.0.0.1 other\n"


def _machine(paths, created, mt, name, files):
    mdir = paths.machine_dir(created, mt, name)
    for rel, text in files.items():
        path = os.path.join(mdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return mdir


def test_watcher_reports_each_transition_once_and_timeline(paths):
    lines = []
    events = os.path.join(paths.root, "events.jsonl")
    watcher = Watcher(paths, lines.append, events, {"idle": 40})
    mdir = _machine(paths, 1_700_000_000, "work", "vm-00.demo.vac.test",
                    {"started": "", "ip": "169.254.169.0\n", "joboutputs/heartbeat": "1\n"})
    watcher.poll()
    watcher.poll()
    assert [line.split(None, 3)[3] for line in lines] == [
        "created", "running (ip 169.254.169.0)", "heartbeat #1: 1"]
    day = os.path.join(paths.apel_archive, "20231114")
    os.makedirs(day)
    with open(os.path.join(day, "221320aabbccdd"), "w") as f:
        f.write("APEL-individual-job-message: v0.3\nWallDuration: 61\n%%\n")
    _machine(paths, 1_700_000_000, "work", "vm-00.demo.vac.test",
             {"joboutputs/shutdown_message": "200 Success\n", "finished": "",
              "apel-record/name": "20231114/221320aabbccdd"})
    _machine(paths, 1_700_000_005, "idle", "vm-01.demo.vac.test",
             {"started": "", "joboutputs/shutdown_message": "300 Nothing to do",
              "finished": ""})
    for _ in range(3):
        watcher.poll()
    text = "\n".join(lines)
    assert 'work   shutdown_message "200 Success"' in text
    assert "APEL record apel-archive/20231114/221320aabbccdd (WallDuration 61 s)" in text
    assert "vm-01    idle   no APEL record (ran less than fizzle_seconds 40)" in text
    assert text.count("finalised by the factory") == 2
    rows = timeline(paths, events)
    assert [r["machine"] for r in rows] == ["vm-00.demo.vac.test", "vm-01.demo.vac.test"]
    assert rows[0]["first_heartbeat"] == os.stat(os.path.join(mdir, "joboutputs",
                                                              "heartbeat")).st_mtime
    assert rows[1]["apel"] is None and rows[1]["message"] == "300 Nothing to do"
    table = timeline_text(rows)
    assert "vm-01.demo.vac.test    idle   2023-11-14 22:13:25" in table


def test_watcher_prints_backoff_lines_once_per_deadline(paths):
    lines = []
    watcher = Watcher(paths, lines.append)
    os.makedirs(paths.log_dir)
    line = ("Nov 21 21:01:56 [6621]: For idle: score 0.00, machinegroup /demo score 0.00, "
            "0 before fizzle, last abort 1795294913, creation restart at 1795294973 - not "
            "eligible: backing off after abort at 1795294913 until 1795294973\n")
    with open(paths.log_file("factory"), "w") as f:
        f.write(line + line + "Nov 21 21:01:57 [6621]: partial")
    watcher.poll()
    assert lines == ["21:01:56  factory  idle   back-off: backing off after abort at "
                     "1795294913 until 1795294973 (no new idle machines until then)"]


def test_without_podman_the_demo_runs_vms_only_and_says_why(tmp_path, monkeypatch):
    from vacdemo import democontainer
    monkeypatch.setattr("shutil.which", lambda name: None if name == "busybox" else "/x")
    assert democontainer.choose_image(str(tmp_path), True) == (
        None, "busybox is not installed (the container image is built from it)")
    assert democontainer.choose_image(str(tmp_path), False) == (None, "--no-containers")
    monkeypatch.setattr(democontainer, "unavailable", lambda: "podman cannot be used (x)")
    root = str(tmp_path / "demo")
    assert demo.configure(root) == 0
    cfg = load_config(Paths(root), processor_count=2, pipes="none")
    assert sorted(cfg.machinetypes) == ["idle", "work"]
