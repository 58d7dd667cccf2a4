#!/usr/bin/env python3
"""Benchmark of the daemon's HTTP endpoint and of an idle daemon (issue 4).

Starts tokenwarden-sim and `tokenwarden run` (10 clusters x 20 policies, every cluster's
violations open so every labelled series exists), then measures:
  * scrape latency: wrk with one connection, one request at a time (median, p99);
  * throughput: wrk with 2 threads x 8 connections (scrapes/s);
  * idle cost: with no poll due (poll_interval 1h) and the systemd watchdog enabled (30 s), the
    daemon's CPU time and context switches (wakeups) over IDLE_SECONDS.
Prints one JSON line per measurement group on stdout (bench/run turns them into tables).

Usage: bench/endpoint_bench.py BIN_DIR [--idle-seconds N]
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CLUSTERS = 10
POLICIES = 20
TOKENS_PER_CLUSTER = 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"endpoint_bench: timed out waiting for {what}")


def policies_toml():
    """20 policies of every kind; each flags some of the generated tokens (alert only)."""
    kinds = [
        'kind = "max_lifetime"\nmax_lifetime = "{d}d"\nrequire_expiry = true',
        'kind = "max_age"\nmax_age = "{d}d"',
        'kind = "forbidden_grant"\nactions = ["write"]\ndatabases = ["*prod*", "db{i}*"]',
        'kind = "all_databases_grant"\nactions = ["read", "write"]',
        'kind = "max_databases"\nmax = {m}',
        'kind = "description_pattern"\npattern = "^svc-{i}"',
        'kind = "expires_soon"\nwithin = "{d}d"',
    ]
    out = []
    sev = ["info", "warning", "critical"]
    for i in range(POLICIES):
        body = kinds[i % len(kinds)].format(d=30 + 10 * i, i=i, m=1 + i % 3)
        out.append(f'[[policies]]\nname = "policy-{i:02d}"\n{body}\nseverity = "{sev[i % 3]}"\naction = "alert"\n')
    return "\n".join(out)


def wrk(url, threads, conns, seconds):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = "Non-2xx" in out or "Socket errors" in out
    return {"rps": rps, "p50_ms": lat(50), "p99_ms": lat(99), "errors": errors}


def proc_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def proc_switches(pid):
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def start_daemon(bin_dir, work, env):
    return subprocess.Popen([str(bin_dir / "tokenwarden"), "--config", str(work / "tokenwarden.toml"), "run"],
                            stderr=open(work / "daemon.log", "a"), env=env)


def main():
    bin_dir = Path(sys.argv[1])
    idle_seconds = 60
    if "--idle-seconds" in sys.argv:
        idle_seconds = int(sys.argv[sys.argv.index("--idle-seconds") + 1])
    if not shutil.which("wrk"):
        raise SystemExit("endpoint_bench: wrk is not installed (scripts/install-deps --test-tools)")
    work = Path(tempfile.mkdtemp(prefix="tw-bench-endpoint-"))
    token = "bench-management-token"
    (work / "token").write_text(token + "\n")
    os.chmod(work / "token", 0o600)
    sim = subprocess.Popen([str(bin_dir / "tokenwarden-sim"), "--listen", "127.0.0.1:0", "--token-file",
                            str(work / "token"), "--seed-tokens", str(TOKENS_PER_CLUSTER), "--seed", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = sim.stdout.readline().strip().split()[-1]
    port = free_port()
    clusters = "".join(f'\n[[clusters]]\nname = "cluster-{i:02d}"\ntype = "clustered"\nurl = "{base}"\n'
                       f'token_file = "{work / "token"}"\n' for i in range(CLUSTERS))
    def config(reuse_metrics_text):
        return (f'[daemon]\ndatabase = "{work / "audit.db"}"\npoll_interval = "1h"\npoll_jitter = "0s"\n'
                f'log_level = "warn"\n\n[http]\nlisten = "127.0.0.1:{port}"\n'
                f'reuse_metrics_text = {"true" if reuse_metrics_text else "false"}\n{clusters}\n{policies_toml()}')
    (work / "tokenwarden.toml").write_text(config(True))
    # A watchdog as under systemd: the daemon pings it from its event loop.
    notify_path = str(work / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(30_000_000))
    daemon = start_daemon(bin_dir, work, env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: urllib.request.urlopen(url + "/readyz", timeout=2).status == 200, 120, "readiness")
        body = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        series = sum(1 for l in body.splitlines() if l and not l.startswith("#"))
        violation_series = sum(1 for l in body.splitlines() if l.startswith("tokenwarden_violations_open{"))

        # Idle first (nothing else has touched the daemon since readiness but one scrape).
        time.sleep(2)
        cpu0, sw0, t0 = proc_cpu_seconds(daemon.pid), proc_switches(daemon.pid), time.monotonic()
        time.sleep(idle_seconds)
        cpu1, sw1, t1 = proc_cpu_seconds(daemon.pid), proc_switches(daemon.pid), time.monotonic()
        idle = {"group": "idle", "seconds": round(t1 - t0, 1), "cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0),
                "wakeups_per_s": (sw1 - sw0) / (t1 - t0), "threads": len(list(Path(f"/proc/{daemon.pid}/task").iterdir()))}

        def scrape_group(name):
            latency = wrk(url + "/metrics", 1, 1, 5)
            throughput = wrk(url + "/metrics", 2, 8, 10)
            return {"group": name, "clusters": CLUSTERS, "policies": POLICIES, "series": series,
                    "violation_series": violation_series, "bytes": len(body),
                    "p50_ms": latency["p50_ms"], "p99_ms": latency["p99_ms"],
                    "rps_1conn": latency["rps"], "rps_8conn": throughput["rps"],
                    "errors": latency["errors"] or throughput["errors"]}
        print(json.dumps(scrape_group("scrape")))
        print(json.dumps(idle))
        # Again with every scrape serializing all series (as after a change in every scrape).
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=20)
        (work / "tokenwarden.toml").write_text(config(False))
        daemon = start_daemon(bin_dir, work, env)
        wait_for(lambda: urllib.request.urlopen(url + "/readyz", timeout=2).status == 200, 120, "readiness")
        print(json.dumps(scrape_group("scrape_uncached")))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=20)
        sim.terminate()
        sim.wait(timeout=10)
        notify.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
