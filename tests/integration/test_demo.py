"""`tokenwarden demo` runs the simulator as tokenwarden-sim child processes (docs/simulator.md): it
finds the one next to tokenwarden, says so clearly when there is none, and stops every child when
the demo ends or is interrupted."""
import os
import shutil
import signal
import subprocess
from pathlib import Path

import twtest


def simulators_of(demo_dir: Path):
    """Pids of the tokenwarden-sim processes that accept the demo's token file."""
    token_file = str(demo_dir / "management.token").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and argv and argv[0].endswith(b"tokenwarden-sim") and token_file in argv:
            pids.append(int(proc.name))
    return pids


def demo_args(demo_dir, *extra):
    return [twtest.binary("tokenwarden"), "demo", "--interval", "1s", "--tokens", "10", "--listen", "",
            "--dir", str(demo_dir), *extra]


def test_demo_once_stops_its_simulators(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.run(demo_args(demo_dir, "--once", "--cycles", "2"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name, flavor in (("prod-eu", "clustered"), ("dedicated-us", "dedicated"), ("core-local", "influxdb3")):
        assert f"  {name:<13} {flavor:<10} http://127.0.0.1:" in proc.stdout, proc.stdout
    assert "cycle 2" in proc.stdout and "demo stopped" in proc.stdout, proc.stdout
    assert "the simulator refused" not in proc.stdout, proc.stdout
    assert simulators_of(demo_dir) == []
    # The history is signed and exported: the demo's own config verifies both.
    assert "signed checkpoints: " in proc.stdout and "exported copy: " in proc.stdout, proc.stdout
    assert oct((demo_dir / "checkpoint.key").stat().st_mode & 0o777) == "0o600"
    config = str(demo_dir / "tokenwarden.toml")
    verify = subprocess.run([twtest.binary("tokenwarden"), "--config", config, "verify"],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and "0 events after it are not signed yet" in verify.stdout, \
        verify.stdout + verify.stderr
    copy = subprocess.run([twtest.binary("tokenwarden"), "--config", config, "verify", "--export",
                           str(demo_dir / "audit-export.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert copy.returncode == 0, copy.stdout + copy.stderr


def test_an_interrupted_demo_stops_its_simulators(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen(demo_args(demo_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("cycle 1"):
                break
        assert len(simulators_of(demo_dir)) == 3, "".join(seen)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "demo stopped" in out, out
    assert simulators_of(demo_dir) == []


def test_demo_without_the_simulator_says_so(tmp_path):
    alone = tmp_path / "bin"
    alone.mkdir()
    shutil.copy(twtest.binary("tokenwarden"), alone / "tokenwarden")
    env = dict(os.environ, PATH=str(tmp_path / "nowhere"))
    proc = subprocess.run([str(alone / "tokenwarden"), "demo", "--once", "--listen", "", "--dir",
                           str(tmp_path / "demo")], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    assert "tokenwarden-sim" in proc.stderr and "PATH" in proc.stderr, proc.stderr
