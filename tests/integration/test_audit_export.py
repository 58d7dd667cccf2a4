"""The audit export ([[audit.export]], docs/audit-export.md) against a real rsyslog.

rsyslog runs as a process of the test on loopback (imtcp, omfile, a template storing the message
only, one a line), without imuxsock or imklog, so it never touches /dev/log or the system journal.
Every scenario checks rsyslog's file with Python: each line parses as JSON, its hash recomputes
as docs/database.md describes, and it equals the database's row; every seq arrives, in order.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import twtest

RSYSLOGD = "/usr/sbin/rsyslogd"
pytestmark = pytest.mark.skipif(not os.path.exists(RSYSLOGD), reason="rsyslog is not installed "
                                "(scripts/install-deps --test-tools)")


def complete_lines(path: Path):
    """The complete lines of a file another process is appending to (a last line without its
    "\n" is still being written)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    text = data[:data.rfind(b"\n") + 1].decode()
    return [line for line in text.split("\n") if line.strip()]


class Rsyslog:
    """An unprivileged-style rsyslogd: its own work dir, config, pid file and output file."""

    def __init__(self, workdir: Path, port: int, tls=None, auth_mode="anon"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.out = self.dir / "audit.jsonl"
        self.pidfile = self.dir / "rsyslogd.pid"
        self.conf = self.dir / "rsyslog.conf"
        tls_global = ""
        tls_input = ""
        if tls:
            tls_global = (f'global(defaultNetstreamDriver="gtls" '
                          f'defaultNetstreamDriverCAFile="{tls["ca"]}" '
                          f'defaultNetstreamDriverCertFile="{tls["cert"]}" '
                          f'defaultNetstreamDriverKeyFile="{tls["key"]}")\n')
            tls_input = 'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" ' \
                        f'streamDriver.authMode="{auth_mode}")\n'
        else:
            tls_input = 'module(load="imtcp")\n'
        self.conf.write_text(
            f'global(workDirectory="{self.dir}" maxMessageSize="64k")\n' + tls_global + tls_input +
            'template(name="msgonly" type="string" string="%msg%\\n")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="tw")\n'
            'ruleset(name="tw") {\n'
            f'  action(type="omfile" file="{self.out}" template="msgonly")\n'
            '}\n')
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "rsyslogd.stderr", "a"))
        twtest.wait_for(self._listening, timeout=15, what="rsyslogd listening")

    def _listening(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def lines(self):
        return complete_lines(self.out)


@pytest.fixture
def rsyslog_factory(tmp_path):
    started = []

    def make(name="rsyslog", tls=None, auth_mode="anon"):
        r = Rsyslog(tmp_path / name, twtest.free_port(), tls, auth_mode)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


def db_rows(tw):
    rows = tw.query("SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash "
                    "FROM audit_log ORDER BY seq")
    keys = ("seq", "recorded_at", "cluster", "token_id", "event", "detail", "prev_hash", "hash")
    return {r[0]: dict(zip(keys, r)) for r in rows}


def check_export(lines, rows):
    """Each line is a row of the database with a hash that recomputes; every seq is there, in
    order. Returns how many lines repeated an earlier one (identical duplicates)."""
    seen = {}
    last = 0
    duplicates = 0
    for line in lines:
        e = json.loads(line)
        canonical = json.dumps([e["seq"], e["recorded_at"], e["cluster"], e["token_id"], e["event"],
                                e["detail"]], separators=(",", ":"),
                               ensure_ascii=False).replace("</", "<\\/")
        assert hashlib.sha256((e["prev_hash"] + canonical).encode()).hexdigest() == e["hash"], e["seq"]
        assert e == rows[e["seq"]], e["seq"]
        if e["seq"] in seen:
            assert seen[e["seq"]] == line, f"seq {e['seq']} arrived twice with different content"
            duplicates += 1
            # A duplicate is a batch sent again: it restarts at a seq already delivered.
        else:
            assert e["seq"] == last + 1, f"seq {last + 1} is missing (got {e['seq']})"
            last = e["seq"]
        seen[e["seq"]] = line
    # The chain links line to line.
    for seq in range(2, last + 1):
        assert json.loads(seen[seq])["prev_hash"] == json.loads(seen[seq - 1])["hash"]
    assert last == max(rows), f"exported up to {last}, the database holds {max(rows)}"
    return duplicates


def verify_export_file(tw, path):
    """`tokenwarden verify --export` on a collector's file: alone and against the database."""
    proc = tw.run("verify", "--export", str(path), check=0)
    assert "exported copy intact" in proc.stdout and "for every seq it holds" in proc.stdout, \
        proc.stdout
    tw.run("verify", "--export", str(path), "--export-only", check=0)


def export_block(name, kind, **keys):
    body = "".join(f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {str(v).lower()}\n"
                   for k, v in keys.items())
    return f'\n[[audit.export]]\nname = "{name}"\ntype = "{kind}"\n{body}'


def export_config(rsys=None, file_path=None, tls=None, client=None, host="127.0.0.1"):
    text = "\n[audit]\n"
    if rsys is not None:
        keys = {"address": f"{host}:{rsys.port}"}
        if tls:
            keys.update(tls=True, ca_file=str(tls["ca"]))
        if client:
            keys.update(cert_file=str(client["cert"]), key_file=str(client["key"]))
        text += export_block("collector", "syslog", **keys)
    if file_path is not None:
        text += export_block("local", "file", path=str(file_path))
    return text


def caught_up(tw, lines_of):
    if not tw.db_path.exists():
        return False
    rows = tw.query("SELECT max(seq) FROM audit_log")[0][0] or 0
    lines = lines_of()
    return rows > 0 and lines and json.loads(lines[-1])["seq"] == rows


def test_collector_restart_under_polling_loses_nothing(tmp_path, sim_factory, tw_factory,
                                                       rsyslog_factory):
    sim = sim_factory(extra_args=["--seed-tokens", "200"])
    rsys = rsyslog_factory()
    rsys.start()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(rsys, file_path=tmp_path / "export.jsonl"),
                    listen=f"127.0.0.1:{twtest.free_port()}")
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=30, what="the first export")
    rsys.stop()
    down_until = time.monotonic() + 30
    while time.monotonic() < down_until:  # churn while the collector is down
        sim.control("POST", "/churn", {"percent": 5})
        time.sleep(1)
    m = tw.metrics()
    lag = [v for (n, labels), v in m.items()
           if n == "tokenwarden_export_lag_events" and ("sink", "collector") in labels]
    failures = [v for (n, labels), v in m.items()
                if n == "tokenwarden_export_failures_total" and ("sink", "collector") in labels]
    assert lag and lag[0] > 0 and failures and failures[0] >= 1, (lag, failures)
    rsys.start()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=60, what="the export after the restart")
    assert tw.stop_daemon() == 0
    rows = db_rows(tw)
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="daemon_stopped exported")
    dups = check_export(rsys.lines(), rows)
    print(f"collector restart: {len(rows)} events, {dups} duplicates at rsyslog")
    verify_export_file(tw, rsys.out)
    assert check_export(complete_lines(tmp_path / "export.jsonl"), rows) == 0
    log = tw.daemon_log()
    assert log.count("export failed; retrying") == 1, "an outage is logged once"
    assert "export recovered" in log


def test_kill_during_backlog_resumes(tmp_path, sim_factory, tw_factory, rsyslog_factory):
    sim = sim_factory(extra_args=["--seed-tokens", "20000"])
    rsys = rsyslog_factory()
    rsys.start()
    export_file = tmp_path / "export.jsonl"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t").replace('timeout = "3s"',
                                                                               'timeout = "60s"')],
                    extra=export_config(rsys, file_path=export_file), poll_interval="1h")
    tw.start_daemon()
    # Kill -9 while the backlog (20,000 token_discovered events) is being delivered.
    twtest.wait_for(lambda: len(rsys.lines()) > 100, timeout=120, what="the export to start")
    at_kill = len(rsys.lines())
    tw.kill_daemon()
    total = tw.query("SELECT max(seq) FROM audit_log")[0][0]
    cursor = dict(tw.query("SELECT name, delivered_seq FROM export_cursors"))
    print(f"killed with {at_kill} of {total} events at rsyslog, cursors {cursor}")
    # The kill must land in the middle of the backlog, or the test proves nothing.
    assert at_kill < total and cursor.get("collector", 0) < total, (at_kill, total, cursor)
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines) and caught_up(
        tw, lambda: complete_lines(export_file)),
        timeout=120, what="the export after the restart")
    assert tw.stop_daemon() == 0
    rows = db_rows(tw)
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="daemon_stopped exported")
    dups = check_export(rsys.lines(), rows)
    print(f"kill -9 during backlog: {len(rows)} events, {dups} identical duplicates at rsyslog")
    verify_export_file(tw, rsys.out)
    file_lines = complete_lines(export_file)
    assert check_export(file_lines, rows) == 0, "the file sink delivers exactly once"
    cursors = tw.query("SELECT name, target, delivered_seq FROM export_cursors ORDER BY name")
    # The syslog cursor stays before what the sink still keeps for resending (the last 6 MiB on a
    # live connection): a restart sends that again.
    by_name = {name: (target, seq) for name, target, seq in cursors}
    assert by_name["local"] == (f"file:{export_file}", max(rows))
    if "collector" in by_name:
        assert by_name["collector"][0] == f"syslog://127.0.0.1:{rsys.port}"
        assert by_name["collector"][1] <= max(rows)


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
                    reason="rsyslog-gnutls is not installed")
def test_tls_collector(tmp_path, sim_factory, tw_factory, rsyslog_factory):
    tls = twtest.make_test_ca(tmp_path / "ca")
    sim = sim_factory(extra_args=["--seed-tokens", "50"])
    rsys = rsyslog_factory(tls=tls)
    rsys.start()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(rsys, tls=tls))
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=30, what="the export over TLS")
    assert tw.stop_daemon() == 0
    rows = db_rows(tw)
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="daemon_stopped exported")
    check_export(rsys.lines(), rows)


def test_tls_collector_with_an_unknown_ca_is_refused(tmp_path, sim_factory, tw_factory,
                                                     rsyslog_factory):
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"):
        pytest.skip("rsyslog-gnutls is not installed")
    tls = twtest.make_test_ca(tmp_path / "ca")
    other = twtest.make_test_ca(tmp_path / "other")
    sim = sim_factory()
    sim.create("one", [])
    rsys = rsyslog_factory(tls=tls)
    rsys.start()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(rsys, tls=other))
    tw.start_daemon()
    twtest.wait_for(lambda: "export failed" in tw.daemon_log(), timeout=30, what="the failure")
    assert tw.stop_daemon() == 0
    assert rsys.lines() == []
    assert "certificate" in tw.daemon_log()


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
                    reason="rsyslog-gnutls is not installed")
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_collector_with_a_certificate_for_another_name_is_refused(tmp_path, sim_factory,
                                                                      tw_factory, rsyslog_factory,
                                                                      host):
    tls = twtest.make_test_ca(tmp_path / "ca", san="DNS:other.example.com",
                              cn="other.example.com")
    sim = sim_factory()
    sim.create("one", [])
    rsys = rsyslog_factory(tls=tls)
    rsys.start()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(rsys, tls=tls, host=host))
    tw.start_daemon()
    twtest.wait_for(lambda: "export failed" in tw.daemon_log(), timeout=30, what="the failure")
    assert tw.stop_daemon() == 0
    assert rsys.lines() == []
    assert "certificate" in tw.daemon_log()


def metric(tw, key):
    """A value from /metrics; None while the endpoint is not up yet."""
    status, _, body = tw.http_get("/metrics")
    return twtest.parse_metrics(body).get(key) if status == 200 else None


def test_require_export_holds_actions_until_the_export_catches_up(tmp_path, sim_factory,
                                                                  tw_factory, rsyslog_factory):
    sim = sim_factory()
    import datetime
    week = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    sim.create("fine", [{"action": "read", "resource": "db"}],
               expires_at=week.strftime("%Y-%m-%dT%H:%M:%SZ"))
    rsys = rsyslog_factory()  # not started yet: the export lags
    policy = ('\n[[policies]]\nname = "must-expire"\nkind = "max_lifetime"\naction = "revoke"\n'
              'grace_period = "0s"\nseverity = "critical"\nmax_lifetime = "30d"\n')
    extra = export_config(rsys).replace("[audit]\n",
                                        '[audit]\nrequire_export = true\nexport_max_lag = "10s"\n')
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=extra + policy,
                    safety="max_actions_per_cycle = 100\nmax_actions_percent = 100\n",
                    listen=f"127.0.0.1:{twtest.free_port()}")
    tw.start_daemon()
    blocked = ("tokenwarden_enforcement_export_blocked", frozenset())
    lag = ("tokenwarden_export_lag_seconds", frozenset({("sink", "collector")}))
    twtest.wait_for(lambda: (metric(tw, lag) or 0) > 10, timeout=45,
                    what="the export to lag more than export_max_lag")
    assert metric(tw, blocked) == 1
    bad = sim.create("no expiry", [{"action": "write", "resource": "db"}])
    twtest.wait_for(lambda: [e for e in tw.events() if e["event"] == "enforcement_halted"],
                    timeout=20, what="the hold to be recorded")
    time.sleep(3)  # several polls while the export lags
    assert [r for r in sim.requests() if r["method"] == "DELETE"] == []
    held = [e for e in tw.events() if e["event"] == "enforcement_halted"]
    assert len(held) == 1 and held[0]["detail"]["reason"] == "export_lagging", held
    assert held[0]["detail"]["planned"] == 1
    assert [e["event"] for e in tw.events() if e["token_id"] == bad["id"]].count("action_planned") == 1
    rsys.start()
    twtest.wait_for(lambda: [r for r in sim.requests() if r["method"] == "DELETE"], timeout=30,
                    what="the revocation once the export caught up")
    deletes = [r for r in sim.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 1 and deletes[0]["path"].endswith("/" + bad["id"])
    twtest.wait_for(lambda: metric(tw, blocked) == 0, timeout=10, what="the gauge back to 0")
    assert tw.stop_daemon() == 0
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="everything exported")
    check_export(rsys.lines(), db_rows(tw))
    assert tw.daemon_log().count("enforcement actions held back") == 1


def test_file_sink_follows_logrotate(tmp_path, sim_factory, tw_factory):
    sim = sim_factory(extra_args=["--seed-tokens", "50"])
    path = tmp_path / "export.jsonl"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(file_path=path))
    lines_of = complete_lines
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, lambda: lines_of(path)), timeout=30, what="the export")
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    rotated = tmp_path / "export.jsonl.1"
    path.rename(rotated)  # logrotate's `create` mode, then its postrotate SIGHUP
    tw.daemon.send_signal(signal.SIGHUP)
    sim.control("POST", "/churn", {"percent": 20})
    twtest.wait_for(lambda: lines_of(path) and caught_up(tw, lambda: lines_of(path)), timeout=30,
                    what="the export into the new file")
    assert tw.stop_daemon() == 0
    twtest.wait_for(lambda: caught_up(tw, lambda: lines_of(path)), timeout=20, what="the rest")
    assert check_export(lines_of(rotated) + lines_of(path), db_rows(tw)) == 0


def test_a_reload_changing_the_export_is_refused(tmp_path, sim_factory, tw_factory):
    sim = sim_factory(extra_args=["--seed-tokens", "20"])
    path = tmp_path / "export.jsonl"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=export_config(file_path=path))
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, lambda: complete_lines(path)), timeout=30,
                    what="the export")
    tw.config_path.write_text(tw.config_path.read_text().replace(str(path),
                                                                 str(tmp_path / "other.jsonl")))
    tw.daemon.send_signal(signal.SIGHUP)
    rejected = twtest.wait_for(
        lambda: [e for e in tw.events() if e["event"] == "config_rejected"], timeout=20,
        what="the reload to be refused")
    assert "[audit] export settings changed" in rejected[0]["detail"]["reason"]
    before = tw.query("SELECT max(seq) FROM audit_log")[0][0]
    sim.control("POST", "/churn", {"percent": 20})
    twtest.wait_for(lambda: tw.query("SELECT max(seq) FROM audit_log")[0][0] > before and
                    caught_up(tw, lambda: complete_lines(path)), timeout=30,
                    what="the running sink to go on")
    assert tw.stop_daemon() == 0
    assert not (tmp_path / "other.jsonl").exists()
    assert check_export(complete_lines(path), db_rows(tw)) == 0


@pytest.mark.parametrize("restart_daemon", [False, True])
def test_a_stalled_collector_killed_with_data_unread_loses_nothing(tmp_path, sim_factory,
                                                                    tw_factory, rsyslog_factory,
                                                                    restart_daemon):
    # rsyslog stops reading (SIGSTOP) while events keep coming; the sink's writes succeed into the
    # sockets' buffers; then rsyslog is killed with that data unread (the kernel answers RST) and
    # started again. The sink must send the unread data again — from its memory, or, when the
    # daemon was restarted meanwhile, from the database: the stored cursor stays before what the
    # sink keeps for resending.
    sim = sim_factory(extra_args=["--seed-tokens", "200"])
    rsys = rsyslog_factory()
    rsys.start()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=export_config(rsys),
                    listen=f"127.0.0.1:{twtest.free_port()}")
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=30, what="the first export")
    rsys.proc.send_signal(signal.SIGSTOP)
    stored = len(rsys.lines())
    delivered = ("tokenwarden_export_delivered_seq", frozenset({("sink", "collector")}))

    def sent_to_head():
        head = tw.query("SELECT max(seq) FROM audit_log")[0][0]
        return metric(tw, delivered) == head and head > stored + 100

    for _ in range(4):  # several deliveries, more than 2 s apart, while rsyslog reads nothing
        sim.control("POST", "/churn", {"percent": 20})
        time.sleep(1.2)
    twtest.wait_for(sent_to_head, timeout=20, what="the unread events sent")
    head = tw.query("SELECT max(seq) FROM audit_log")[0][0]
    cursor = tw.query("SELECT delivered_seq FROM export_cursors WHERE name = 'collector'")
    assert not cursor or cursor[0][0] <= stored, (cursor, stored, head)  # the unread range is kept
    if restart_daemon:
        assert tw.stop_daemon() == 0
    rsys.proc.kill()  # SIGKILL while stopped: its sockets close with data unread
    rsys.proc.wait()
    rsys.proc = None
    rsys.start()
    if restart_daemon:
        tw.start_daemon()
    sim.control("POST", "/churn", {"percent": 20})
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=60, what="the export after it")
    assert tw.stop_daemon() == 0
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="daemon_stopped exported")
    rows = db_rows(tw)
    dups = check_export(rsys.lines(), rows)
    print(f"stalled collector killed (daemon restarted: {restart_daemon}): {stored} stored before "
          f"the stall, {len(rows)} events, {dups} identical duplicates")


def client_certificate(ca_dir: Path) -> dict:
    """A client certificate signed by make_test_ca's CA (openssl CLI)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=ca_dir)
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=tokenwarden")
    (ca_dir / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf")
    return {"cert": ca_dir / "client.pem", "key": ca_dir / "client.key"}


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"),
                    reason="rsyslog-gnutls is not installed")
def test_tls_collector_requiring_a_client_certificate(tmp_path, sim_factory, tw_factory,
                                                      rsyslog_factory):
    tls = twtest.make_test_ca(tmp_path / "ca")
    client = client_certificate(tmp_path / "ca")
    sim = sim_factory(extra_args=["--seed-tokens", "20"])
    rsys = rsyslog_factory(tls=tls, auth_mode="x509/certvalid")
    rsys.start()
    without = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t1")],
                         extra=export_config(rsys, tls=tls), name="without")
    without.start_daemon()
    twtest.wait_for(lambda: "export failed" in without.daemon_log(), timeout=20,
                    what="the refusal to be noticed (TLS 1.3 refuses after the handshake)")
    assert without.stop_daemon() == 0
    assert rsys.lines() == [], "rsyslog accepted a client without a certificate"
    assert without.query("SELECT delivered_seq FROM export_cursors") == [], \
        "the cursor moved although rsyslog stored nothing"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t2")],
                    extra=export_config(rsys, tls=tls, client=client), name="with")
    tw.start_daemon()
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=30, what="the export with a client "
                    "certificate")
    assert tw.stop_daemon() == 0
    twtest.wait_for(lambda: caught_up(tw, rsys.lines), timeout=20, what="daemon_stopped exported")
    check_export(rsys.lines(), db_rows(tw))
    assert "client.key" not in "".join(rsys.lines())
