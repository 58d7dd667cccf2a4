"""Operations (issue 4): the HTTP endpoint and its metrics, readiness, sd_notify, live reload,
shutdown during polls and enforcement, the endpoint under load. Every test runs the real
`tokenwarden run` against a real tokenwarden-sim; promtool checks the live exposition."""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import twtest
from twtest import metric


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def require(tool):
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: run scripts/install-deps --test-tools"
    return path


POLICIES = """
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "alert"

[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "3650d"
require_expiry = true
severity = "warning"
action = "alert"
"""


def seed_known_inventory(sim):
    """A small inventory whose every gauge value is known. Returns the tokens by role."""
    now = datetime.now(timezone.utc)
    t = {}
    t["star"] = sim.create("svc-ingest", [{"action": "write", "resource": "*"}])
    t["noexp1"] = sim.create("grafana dashboards", [{"action": "read", "resource": "db1"}])
    t["noexp2"] = sim.create("team/adhoc", [{"action": "read", "resource": "db2"}])
    t["in12h"] = sim.create("ci short", [], expires_at=iso(now + timedelta(hours=12)))
    t["in3d"] = sim.create("ci 3 days", [], expires_at=iso(now + timedelta(days=3)))
    t["in20d"] = sim.create("svc-20d", [], expires_at=iso(now + timedelta(days=20)))
    t["in90d"] = sim.create("svc-90d", [], expires_at=iso(now + timedelta(days=90)))
    t["revoked"] = sim.create("old", [], expires_at=iso(now + timedelta(days=90)))
    status, _ = sim.api("DELETE", f"/tokens/{t['revoked']['id']}")
    assert status == 204
    return t


def make_tw(tw_factory, tmp_path, sim, extra="", name="tw", **kwargs):
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / f"{name}-token")], extra=extra, name=name,
                    listen=listen, **kwargs)
    return tw


def test_metrics_reflect_inventory_policies_and_pass_promtool(tmp_path, sim, tw_factory):
    tokens = seed_known_inventory(sim)
    expires = iso(datetime.now(timezone.utc) + timedelta(days=30))
    exemption = f"""
[[exemptions]]
policy = "must-expire"
token_id = "{tokens['noexp1']['id']}"
reason = "dashboards, reviewed quarterly"
expires = "{expires}"
"""
    tw = make_tw(tw_factory, tmp_path, sim, extra=POLICIES + exemption)
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 2, what="two polls")
    m = tw.metrics()
    c1 = {"cluster": "c1"}
    assert metric(m, "tokenwarden_build_info", version=tw.run("--version", check=0).stdout.split()[-1]) == 1
    assert metric(m, "tokenwarden_tokens", status="active", **c1) == 7
    assert metric(m, "tokenwarden_tokens", status="revoked", **c1) == 1
    assert metric(m, "tokenwarden_tokens", status="expired", **c1) == 0
    assert metric(m, "tokenwarden_tokens_without_expiry", **c1) == 3
    assert metric(m, "tokenwarden_tokens_expiring", within="1d", **c1) == 1
    assert metric(m, "tokenwarden_tokens_expiring", within="7d", **c1) == 2
    assert metric(m, "tokenwarden_tokens_expiring", within="30d", **c1) == 3
    # Three tokens never expire; one is exempt from must-expire.
    assert metric(m, "tokenwarden_violations_open", policy="must-expire", severity="warning", **c1) == 2
    assert metric(m, "tokenwarden_violations_open", policy="no-star-write", severity="critical", **c1) == 1
    assert metric(m, "tokenwarden_violations_opened_total", policy="must-expire", **c1) == 2
    assert metric(m, "tokenwarden_enforcement_halted", **c1) == 0
    assert metric(m, "tokenwarden_polls_total", outcome="ok", **c1) >= 2
    assert metric(m, "tokenwarden_poll_duration_seconds_count", **c1) >= 2
    assert abs(metric(m, "tokenwarden_last_successful_poll_timestamp_seconds", **c1) - time.time()) < 10
    assert metric(m, "tokenwarden_audit_events_total", event="token_discovered") == 8
    assert metric(m, "tokenwarden_audit_events_total", event="violation_opened") == 3
    assert metric(m, "tokenwarden_audit_events_total", event="exemption_applied") == 1
    assert metric(m, "tokenwarden_exemptions_active", policy="must-expire") == 1
    assert metric(m, "tokenwarden_exemptions_active", policy="no-star-write") == 0
    assert metric(m, "tokenwarden_config_last_reload_successful") == 1
    assert abs(metric(m, "tokenwarden_config_last_reload_success_timestamp_seconds") - time.time()) < 30
    # The counters follow the audit log exactly.
    for (event,), n in {(e,): c for e, c in tw.query("SELECT event, count(*) FROM audit_log GROUP BY event")}.items():
        assert metric(m, "tokenwarden_audit_events_total", event=event) == n, event

    status, headers, body = tw.http_get("/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for t in tokens.values():  # no token ids or descriptions as labels
        assert t["id"] not in body and t["description"] not in body
    assert twtest.MANAGEMENT_TOKEN not in body
    check = subprocess.run([require("promtool"), "check", "metrics"], input=body, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check

    # A change between polls shows up in the gauges of the next poll.
    sim.api("DELETE", f"/tokens/{tokens['star']['id']}")
    def star_resolved():
        m2 = tw.metrics()
        return metric(m2, "tokenwarden_violations_open", policy="no-star-write", severity="critical", **c1) in (0, None) \
            and metric(m2, "tokenwarden_tokens", status="revoked", **c1) == 2
    twtest.wait_for(star_resolved, what="the revoked token in the gauges")
    assert tw.stop_daemon() == 0


def test_health_readiness_and_http_errors(tmp_path, sim, tw_factory):
    sim.create("one", [])
    tw = make_tw(tw_factory, tmp_path, sim)
    tw.start_daemon()
    twtest.wait_for(lambda: tw.http_get("/healthz")[0] == 200, what="healthz")
    twtest.wait_for(lambda: tw.http_get("/readyz")[0] == 200, what="ready after the first poll")
    status, headers, body = tw.http_get("/readyz")
    assert headers["Content-Type"] == "application/json" and '"ready":true' in body

    # The cluster fails: after 3 intervals (1s each) /readyz says which cluster and why.
    sim.fault(kind="status", status=500)
    def not_ready():
        s, _, b = tw.http_get("/readyz")
        return (s, b) if s == 503 else None
    status, body = twtest.wait_for(not_ready, timeout=15, what="readyz 503")
    import json
    doc = json.loads(body)
    assert doc["ready"] is False
    assert any("cluster c1" in r and "more than 3 intervals" in r and "500" in r for r in doc["reasons"]), doc
    assert tw.http_get("/healthz")[0] == 200  # the daemon itself is fine
    sim.clear_faults()
    twtest.wait_for(lambda: tw.http_get("/readyz")[0] == 200, what="ready again")

    # Anything else: 404/405, bounded headers.
    assert tw.http_get("/nope")[0] == 404
    req = twtest.urllib.request.Request(f"http://{tw.listen}/metrics", data=b"x", method="POST")
    try:
        twtest.urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST was accepted")
    except twtest.urllib.error.HTTPError as e:
        assert e.code == 405 and e.headers["Allow"] == "GET, HEAD"
    status, _, _ = tw.http_get("/metrics", headers={"X-Big": "a" * 20000})
    assert status in (413, 431)
    assert tw.stop_daemon() == 0


def test_unready_when_the_cluster_never_polled_and_http_bind_failure(tmp_path, sim, tw_factory):
    # A port already taken: the daemon says so in one line and exits 1 before READY.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], listen=f"127.0.0.1:{port}")
    proc = tw.run("run", timeout=30)
    busy.close()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


class NotifySocket:
    """A $NOTIFY_SOCKET that records every datagram the daemon sends, in order."""

    def __init__(self, directory):
        self.path = str(Path(directory) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            with self.lock:
                self.messages.append(data)

    def kinds(self):
        """READY/WATCHDOG/RELOADING/STOPPING in arrival order (STATUS-only messages left out)."""
        out = []
        with self.lock:
            for m in self.messages:
                fields = dict(line.split("=", 1) for line in m.split("\n") if "=" in line)
                for k in ("READY", "WATCHDOG", "RELOADING", "STOPPING"):
                    if fields.get(k) == "1":
                        out.append(k)
        return out

    def all(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def test_sd_notify_ready_watchdog_reloading_stopping_in_order(tmp_path, sim, tw_factory):
    sim.create("one", [])
    tw = make_tw(tw_factory, tmp_path, sim)
    notify = NotifySocket(tmp_path)
    try:
        tw.start_daemon(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"})
        twtest.wait_for(lambda: "READY" in notify.kinds(), what="READY=1")
        # READY only once the listener is bound: the endpoint answers right away.
        assert tw.http_get("/healthz")[0] == 200
        twtest.wait_for(lambda: notify.kinds().count("WATCHDOG") >= 3, what="watchdog pings (every 300ms)")
        tw.daemon.send_signal(signal.SIGHUP)
        twtest.wait_for(lambda: "RELOADING" in notify.kinds() and notify.kinds()[-1] != "RELOADING",
                        what="RELOADING then READY")
        twtest.wait_for(lambda: notify.kinds().count("WATCHDOG") >= 5, what="more pings after the reload")
        assert tw.stop_daemon() == 0
        kinds = notify.kinds()
        assert kinds[0] == "READY", kinds
        r = kinds.index("RELOADING")
        assert kinds[r + 1] == "READY", kinds  # the reload ends with READY=1
        assert "WATCHDOG" in kinds[1:r]
        assert kinds[-1] == "STOPPING" or ("STOPPING" in kinds and all(k == "WATCHDOG" for k in kinds[kinds.index("STOPPING") + 1:]))
        assert kinds.count("STOPPING") == 1
        statuses = [m for m in notify.all() if m.startswith("STATUS=")]
        assert any("last poll: c1 ok" in s for s in statuses), statuses
        reloading = [m for m in notify.all() if "RELOADING=1" in m][0]
        assert "MONOTONIC_USEC=" in reloading
        assert all(twtest.MANAGEMENT_TOKEN not in m for m in notify.all())
    finally:
        notify.close()


def config_hash(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_sighup_applies_a_valid_config_and_keeps_the_old_one_on_errors(tmp_path, sim_factory, tw_factory):
    s1 = sim_factory("s1")
    s2 = sim_factory("s2")
    s1.create("svc-a", [{"action": "write", "resource": "*"}])
    s2.create("svc-b", [{"action": "write", "resource": "*"}])
    tw = make_tw(tw_factory, tmp_path, s1, extra=POLICIES)
    original = tw.config_path.read_text()
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls("c1")) >= 1 and tw.http_get("/readyz")[0] == 200, what="first poll")
    before = tw.metrics()
    first_reload_ts = metric(before, "tokenwarden_config_last_reload_success_timestamp_seconds")

    # Valid change: add cluster c2, drop the no-star-write policy, lower a limit.
    changed = original.replace(POLICIES, POLICIES.split("[[policies]]\nname = \"must-expire\"")[0].replace(
        "no-star-write", "no-star-write-v2")) + twtest.clustered_block("c2", s2, tmp_path / "t2")
    tw.config_path.write_text(changed)
    time.sleep(1.1)  # a distinct reload timestamp
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: len(tw.polls("c2")) >= 1, what="the added cluster polled")
    applied = [e for e in tw.events() if e["event"] == "config_applied"]
    assert applied[-1]["detail"]["config_hash"] == config_hash(tw.config_path)
    assert applied[-1]["detail"]["clusters"] == ["c1", "c2"]
    assert applied[-1]["detail"]["policies"] == ["no-star-write-v2"]
    twtest.wait_for(lambda: tw.query("SELECT count(*) FROM violations WHERE policy = 'must-expire' AND state = 'resolved' "
                                     "AND resolution = 'policy_removed'")[0][0] >= 1, what="removed policy resolved")
    m = twtest.wait_for(lambda: (lambda m: m if metric(m, "tokenwarden_violations_open", cluster="c2", policy="no-star-write-v2",
                                                       severity="critical") == 1 else None)(tw.metrics()),
                        what="violation on c2 in the metrics")
    assert metric(m, "tokenwarden_config_last_reload_successful") == 1
    assert metric(m, "tokenwarden_config_last_reload_success_timestamp_seconds") > first_reload_ts
    assert metric(m, "tokenwarden_violations_open", cluster="c1", policy="must-expire", severity="warning") is None
    assert "configuration reloaded" in tw.daemon_log()

    # Invalid: an unknown key and a bad duration. Nothing changes, metric 0, one clear line.
    good_hash = config_hash(tw.config_path)
    tw.config_path.write_text(changed + "\n[daemon2]\nx = 1\n")
    n_events = len(tw.events())
    polls_c1 = len(tw.polls("c1"))
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: metric(tw.metrics(), "tokenwarden_config_last_reload_successful") == 0, what="reload metric 0")
    failures = [l for l in tw.daemon_log().splitlines() if "configuration reload failed" in l]
    assert len(failures) == 1 and "daemon2: unknown key" in failures[0], failures
    twtest.wait_for(lambda: len(tw.polls("c1")) >= polls_c1 + 2 and len(tw.polls("c2")) >= 3, what="polling goes on")
    assert [e for e in tw.events()[n_events:] if e["event"] == "config_applied"] == []

    # A syntax error is one line too (toml11's multi-line excerpt is folded).
    tw.config_path.write_text(changed + "\nbroken = [\n")
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: len([l for l in tw.daemon_log().splitlines() if "configuration reload failed" in l]) == 2,
                    what="second failure logged")
    line = [l for l in tw.daemon_log().splitlines() if "configuration reload failed" in l][-1]
    assert "TOML syntax error" in line and "(line " in line

    # Changing the database is refused as a whole.
    tw.config_path.write_text(changed.replace(str(tw.db_path), str(tmp_path / "other.db")))
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: "daemon.database changed" in tw.daemon_log(), what="database change refused")
    assert not (tmp_path / "other.db").exists()

    # Back to the original: cluster c2 goes away, its gauges with it.
    tw.config_path.write_text(original)
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: metric(tw.metrics(), "tokenwarden_config_last_reload_successful") == 1, what="reload ok")
    twtest.wait_for(lambda: metric(tw.metrics(), "tokenwarden_tokens", cluster="c2", status="active") is None,
                    what="c2 gauges gone")
    n = len(tw.polls("c2"))
    time.sleep(2.5)
    assert len(tw.polls("c2")) == n  # no longer polled
    assert [e for e in tw.events() if e["event"] == "config_applied"][-1]["detail"]["config_hash"] == config_hash(tw.config_path)
    assert good_hash != config_hash(tw.config_path)
    assert tw.stop_daemon() == 0
    tw.run("verify", check=0)


def test_sighup_storm_under_continuous_polling(tmp_path, sim_factory, tw_factory):
    sims = [sim_factory(f"s{i}") for i in range(3)]
    for i, s in enumerate(sims):
        s.generate(200, seed=i + 1)
    blocks = [twtest.clustered_block(f"c{i}", s, tmp_path / f"t{i}") for i, s in enumerate(sims)]
    tw = tw_factory(blocks, extra=POLICIES, listen=f"127.0.0.1:{twtest.free_port()}")
    a = tw.config_path.read_text()
    # B changes a policy and rebuilds cluster c1's poller (a different timeout).
    b = a.replace('max_lifetime = "3650d"', 'max_lifetime = "365d"').replace(
        blocks[1], blocks[1].replace('timeout = "3s"', 'timeout = "4s"'))
    assert b.count('timeout = "4s"') == 1
    tw.start_daemon()
    twtest.wait_for(lambda: all(len(tw.polls(f"c{i}")) >= 1 for i in range(3)), what="first polls")
    t_start = time.time()
    for k in range(30):
        tw.config_path.write_text(b if k % 2 == 0 else a)
        tw.daemon.send_signal(signal.SIGHUP)
        time.sleep(0.15)
    time.sleep(2)
    t_end = time.time()
    assert tw.daemon.poll() is None
    m = tw.metrics()
    assert metric(m, "tokenwarden_config_last_reload_successful") == 1
    assert tw.stop_daemon() == 0
    assert "configuration reload failed" not in tw.daemon_log()
    # Polling never paused: every cluster kept its 1 s schedule through the storm, no poll failed.
    for i in range(3):
        rows = tw.query("SELECT started_at, outcome FROM polls WHERE cluster = ? ORDER BY id", (f"c{i}",))
        assert all(o == "ok" for _, o in rows)
        ts = [datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() for s, _ in rows]
        during = [t for t in ts if t_start - 1 <= t <= t_end]
        gaps = [y - x for x, y in zip(during, during[1:])]
        assert len(during) >= 5 and max(gaps) < 1.6, (i, gaps)
    applied = [e for e in tw.events() if e["event"] == "config_applied"]
    assert 2 <= len(applied) <= 31
    assert applied[-1]["detail"]["config_hash"] == config_hash(tw.config_path)
    tw.run("verify", check=0)
    assert tw.query("PRAGMA integrity_check")[0][0] == "ok"


def test_sigterm_during_enforcement_is_prompt_and_the_action_runs_once_later(tmp_path, sim, tw_factory):
    victim = sim.create("ci pipeline (temporary)", [{"action": "write", "resource": "*"}])
    policy = """
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "revoke"
grace_period = "0s"
"""
    block = twtest.clustered_block("c1", sim, tmp_path / "t").replace('timeout = "3s"', 'timeout = "60s"')
    tw = tw_factory([block], extra=policy, listen=f"127.0.0.1:{twtest.free_port()}",
                    safety="max_actions_percent = 100\n")
    sim.fault(kind="timeout", method="DELETE")  # the revoke hangs
    tw.start_daemon()
    twtest.wait_for(lambda: any(r["method"] == "DELETE" for r in sim.requests()), what="the DELETE in flight")
    t0 = time.monotonic()
    assert tw.stop_daemon(timeout=15) == 0
    assert time.monotonic() - t0 < 10
    kinds = [e["event"] for e in tw.events()]
    assert kinds[-1] == "daemon_stopped"
    assert "action_planned" in kinds and "action_succeeded" not in kinds
    tw.run("verify", check=0)
    assert sim.api("GET", "/tokens/" + victim["id"])[1].get("revokedAt") is None

    sim.clear_faults()
    tw.start_daemon()
    twtest.wait_for(lambda: "action_succeeded" in [e["event"] for e in tw.events()], what="the action after restart")
    twtest.wait_for(lambda: ("token_revoked", victim["id"]) in tw.token_events(), what="the revocation recorded")
    assert tw.stop_daemon() == 0
    deletes = [r for r in sim.requests() if r["method"] == "DELETE" and r.get("status") == 204]
    assert len(deletes) == 1, deletes
    assert [e["event"] for e in tw.events()].count("action_succeeded") == 1


def test_endpoint_under_load_does_not_disturb_the_poll_schedule(tmp_path, sim, tw_factory):
    wrk = require("wrk")
    sim.generate(2000, seed=3)
    tw = make_tw(tw_factory, tmp_path, sim, extra=POLICIES)
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 2, what="polls")
    # A few slow clients that never finish their request, alongside wrk's hammering.
    idle = []
    host, port = tw.listen.split(":")
    for _ in range(10):
        c = socket.create_connection((host, int(port)))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        idle.append(c)
    t_start = time.time()
    out = subprocess.run([wrk, "-t2", "-c16", "-d6s", f"http://{tw.listen}/metrics"], capture_output=True,
                         text=True, timeout=60)
    t_end = time.time()
    for c in idle:
        c.close()
    assert out.returncode == 0, out.stderr
    assert "Non-2xx" not in out.stdout and "Socket errors" not in out.stdout, out.stdout
    requests = int([l for l in out.stdout.splitlines() if "requests in" in l][0].split()[0])
    assert requests > 1000, out.stdout
    assert tw.stop_daemon() == 0
    rows = tw.query("SELECT started_at, outcome FROM polls ORDER BY id")
    ts = [datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() for s, _ in rows]
    during = [t for t in ts if t_start <= t <= t_end]
    gaps = [y - x for x, y in zip(during, during[1:])]
    assert len(during) >= 5 and max(gaps) < 1.5, gaps
    assert all(o == "ok" for _, o in rows)


def bcrypt_hash(password):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))


def test_web_config_tls_basic_auth_and_client_certificates(tmp_path, sim, tw_factory):
    ca = twtest.make_test_ca(tmp_path / "ca")
    d = tmp_path / "ca"
    # A client certificate signed by the same CA, for mutual TLS.
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
                    "-subj", "/CN=prometheus"], check=True, capture_output=True, cwd=d)
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf"],
                   check=True, capture_output=True, cwd=d)
    web = tmp_path / "web.toml"
    web.write_text(f"""
[tls]
cert_file = "ca/server.pem"
key_file = "ca/server.key"

[basic_auth.users]
prometheus = "{bcrypt_hash('scrape-pass')}"
""")
    sim.create("one", [])
    port = twtest.free_port()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], listen=f"127.0.0.1:{port}")
    tw.config_path.write_text(tw.config_path.read_text().replace(
        f'listen = "127.0.0.1:{port}"', f'listen = "127.0.0.1:{port}"\nweb_config = "{web}"'))
    tw.run("check-config", check=0)
    tw.start_daemon()
    url = f"https://localhost:{port}/metrics"
    curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(ca["ca"])]
    twtest.wait_for(lambda: subprocess.run(curl + [url], capture_output=True, text=True).stdout == "401",
                    what="401 without credentials")
    assert subprocess.run(curl + ["-u", "prometheus:wrong", url], capture_output=True, text=True).stdout == "401"
    assert subprocess.run(curl + ["-u", "prometheus:scrape-pass", url], capture_output=True, text=True).stdout == "200"
    # Plain HTTP on the TLS port gets no metrics.
    plain = subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True)
    assert plain.stdout != "200"
    assert tw.stop_daemon() == 0
    assert "scrape-pass" not in tw.daemon_log()

    # Mutual TLS: without a client certificate the handshake fails; with one it works.
    web.write_text(web.read_text().replace('key_file = "ca/server.key"',
                                           'key_file = "ca/server.key"\nclient_ca_file = "ca/ca.pem"'))
    tw.start_daemon()
    twtest.wait_for(lambda: subprocess.run(curl + ["-u", "prometheus:scrape-pass", "--cert", str(d / "client.pem"),
                                                   "--key", str(d / "client.key"), url],
                                           capture_output=True, text=True).stdout == "200", what="mTLS 200")
    assert subprocess.run(curl + ["-u", "prometheus:scrape-pass", url], capture_output=True, text=True).stdout == "000"
    assert tw.stop_daemon() == 0

    # A broken web config is a configuration error with its key path, and the hash is not echoed.
    web.write_text('[basic_auth.users]\nprometheus = "plaintext-password"\n[tls]\ncert = "x"\n')
    proc = tw.run("check-config", check=2)
    assert "http.web_config" in proc.stderr and "basic_auth.users.prometheus: expected a bcrypt hash" in proc.stderr
    assert "tls.cert: unknown key" in proc.stderr
    assert "plaintext-password" not in proc.stderr


def test_json_logs_carry_fields_and_no_secret(tmp_path, sim, tw_factory):
    import json
    sim.create("svc-a", [{"action": "write", "resource": "*"}])
    tw = make_tw(tw_factory, tmp_path, sim, extra=POLICIES, daemon_extra='log_format = "json"')
    tw.start_daemon()
    twtest.wait_for(lambda: "violation opened" in tw.daemon_log(), what="a violation logged")
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: "configuration reloaded" in tw.daemon_log(), what="reload logged")
    assert tw.stop_daemon() == 0
    lines = tw.daemon_log().splitlines()
    docs = [json.loads(l) for l in lines]  # every line is one JSON object
    v = [d for d in docs if d.get("msg", d.get("message")) == "violation opened"]
    assert v and all(d["cluster"] == "c1" and d["policy"] and d["token_id"] for d in v), v[:1]
    assert twtest.MANAGEMENT_TOKEN not in tw.daemon_log()


PROM_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: tokenwarden
    static_configs:
      - targets: ["{target}"]
"""


def prom_query(port, q):
    import json
    import urllib.parse
    url = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(q)
    with twtest.urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())["data"]["result"]


def prom_alerts(port):
    import json
    with twtest.urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=10) as r:
        return json.loads(r.read())["data"]["alerts"]


def test_real_prometheus_scrapes_and_a_shipped_rule_fires(tmp_path, sim, tw_factory):
    prometheus = require("prometheus")
    tokens = seed_known_inventory(sim)
    tw = make_tw(tw_factory, tmp_path, sim, extra=POLICIES)
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 1, what="first poll")
    # The shipped rules, with every `for:` shortened so a test does not wait minutes; the
    # expressions are the shipped ones.
    shipped = (twtest.SOURCE_DIR / "config" / "prometheus" / "tokenwarden.rules.yml").read_text()
    import re
    rules = tmp_path / "rules.yml"
    rules.write_text(re.sub(r"(\n\s+for: )\S+", r"\g<1>0s", shipped))
    prom_port = twtest.free_port()
    (tmp_path / "prometheus.yml").write_text(PROM_CONFIG.format(rules=rules, target=tw.listen))
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        def value(q):
            try:
                r = prom_query(prom_port, q)
            except OSError:
                return None
            return float(r[0]["value"][1]) if r else None
        twtest.wait_for(lambda: value('tokenwarden_tokens{cluster="c1",status="active"}') == 7, timeout=60,
                        what="tokens queryable in Prometheus")
        assert value('up{job="tokenwarden"}') == 1
        assert value('tokenwarden_tokens_without_expiry{cluster="c1"}') == 3
        assert value('tokenwarden_violations_open{cluster="c1",policy="no-star-write",severity="critical"}') == 1
        assert value('tokenwarden_config_last_reload_successful') == 1
        assert value('sum(tokenwarden_polls_total{cluster="c1",outcome="ok"})') >= 1
        assert value('tokenwarden_build_info') == 1
        # The critical violation alert of the shipped rules fires.
        twtest.wait_for(lambda: any(a["labels"]["alertname"] == "TokenwardenCriticalViolationsOpen"
                                    and a["state"] == "firing" for a in prom_alerts(prom_port)),
                        timeout=30, what="TokenwardenCriticalViolationsOpen firing")
        assert not any(a["labels"]["alertname"] == "TokenwardenPollsFailing" for a in prom_alerts(prom_port))
        # The simulator fails: TokenwardenPollsFailing fires for cluster c1.
        sim.fault(kind="status", status=500)
        twtest.wait_for(lambda: any(a["labels"]["alertname"] == "TokenwardenPollsFailing"
                                    and a["labels"].get("cluster") == "c1" and a["state"] == "firing"
                                    for a in prom_alerts(prom_port)),
                        timeout=60, what="TokenwardenPollsFailing firing")
        assert value('tokenwarden_polls_total{cluster="c1",outcome="failed"}') >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert tw.stop_daemon() == 0
