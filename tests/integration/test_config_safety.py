"""Nothing switches monitoring off silently (issue 9): a configuration without [[clusters]] (an
empty or truncated file, a directory given as --config) is refused by check-config, at start and
on SIGHUP; check-config loads what `run` loads (web_config TLS files, alerting URLs, token files);
a start that fails writes no audit event. Every test runs the real binaries against
tokenwarden-sim."""
import hashlib
import signal
import socket

import pytest
import twtest
from twtest import metric

NO_CLUSTERS = "clusters: no [[clusters]] configured; at least one is required, or nothing would be monitored"


def audit_event_count(tw):
    if not tw.db_path.exists():
        return 0
    return tw.query("SELECT count(*) FROM audit_events")[0][0]


def polled_tw(tmp_path, sim, tw_factory, **kwargs):
    """A configuration with one cluster, polled once, so the database holds events already."""
    sim.create("svc-a", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "c1.token")], **kwargs)
    tw.poll(check=0)
    assert audit_event_count(tw) > 0
    return tw


def break_config(tw, how, tmp_path):
    """Replaces the configuration as an operator's mistake would; returns the expected error."""
    text = tw.config_path.read_text()
    if how == "empty":
        tw.config_path.write_text("")
        return f"{tw.config_path}: the file is empty; a configuration needs at least one [[clusters]] table"
    if how == "truncated":
        # Cut before the [[clusters]] table: still valid TOML, and it keeps daemon.database.
        tw.config_path.write_text(text[:text.index("[[clusters]]")])
        return NO_CLUSTERS
    assert how == "directory"
    conf_dir = tmp_path / "etc-tokenwarden"
    conf_dir.mkdir()
    tw.config_path = conf_dir
    return f"{conf_dir}: cannot read the configuration file: is a directory, not a file"


@pytest.mark.parametrize("how", ["empty", "truncated", "directory"])
def test_a_config_without_clusters_is_refused_by_check_config_and_run(how, tmp_path, sim, tw_factory):
    tw = polled_tw(tmp_path, sim, tw_factory)
    events = audit_event_count(tw)
    expected = break_config(tw, how, tmp_path)

    check = tw.run("check-config", check=2)
    assert check.stdout == ""
    assert check.stderr.splitlines() == [expected, f"{tw.config_path}: 1 problem(s) found"]

    run = tw.run("run", check=2, timeout=30)
    assert f"tokenwarden: error: {expected}" in run.stderr.splitlines()
    assert audit_event_count(tw) == events, "a refused start wrote audit events"


def test_sighup_to_an_empty_or_missing_file_keeps_the_running_config(tmp_path, sim, tw_factory):
    sim.create("svc-a", [])
    sim.create("svc-b", [])
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "c1.token")], listen=listen)
    original = tw.config_path.read_text()
    running_hash = hashlib.sha256(original.encode()).hexdigest()
    tw.start_daemon()
    twtest.wait_for(lambda: tw.http_get("/readyz")[0] == 200, what="ready")
    assert metric(tw.metrics(), "tokenwarden_tokens", cluster="c1", status="active") == 2

    # `: > tokenwarden.toml; kill -HUP` (a config-management slip).
    tw.config_path.write_text("")
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: metric(tw.metrics(), "tokenwarden_config_last_reload_successful") == 0,
                    what="reload metric 0")
    rejected = twtest.wait_for(lambda: tw.events(kinds={"config_rejected"}), what="config_rejected")
    assert len(rejected) == 1
    assert rejected[0]["cluster"] is None and rejected[0]["token_id"] is None
    assert rejected[0]["detail"] == {
        "path": str(tw.config_path),
        "config_hash": hashlib.sha256(b"").hexdigest(),
        "running_config_hash": running_hash,
        "reason": f"{tw.config_path}: the file is empty; a configuration needs at least one [[clusters]] table",
    }
    failures = [l for l in tw.daemon_log().splitlines() if "configuration reload failed" in l]
    assert len(failures) == 1 and "the file is empty" in failures[0], failures
    assert "configuration reloaded" not in tw.daemon_log()

    # The cluster is still watched: gauges present, polls go on, still ready.
    n = len(tw.polls("c1"))
    twtest.wait_for(lambda: len(tw.polls("c1")) >= n + 2, what="polling goes on")
    m = tw.metrics()
    assert metric(m, "tokenwarden_tokens", cluster="c1", status="active") == 2
    assert metric(m, "tokenwarden_last_successful_poll_timestamp_seconds", cluster="c1") is not None
    assert tw.http_get("/readyz")[0] == 200

    # The file replaced by a directory: rejected too, with no hash (nothing could be read).
    tw.config_path.unlink()
    tw.config_path.mkdir()
    tw.daemon.send_signal(signal.SIGHUP)
    rejected = twtest.wait_for(lambda: (lambda r: r if len(r) == 2 else None)(tw.events(kinds={"config_rejected"})),
                               what="second config_rejected")
    assert rejected[1]["detail"]["config_hash"] is None
    assert rejected[1]["detail"]["reason"] == (f"{tw.config_path}: cannot read the configuration file: "
                                               "is a directory, not a file")

    # Put back: the reload succeeds, and nothing was applied in between.
    tw.config_path.rmdir()
    tw.config_path.write_text(original)
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: metric(tw.metrics(), "tokenwarden_config_last_reload_successful") == 1, what="reload ok")
    assert tw.stop_daemon() == 0
    kinds = [e["event"] for e in tw.events()]
    assert kinds.count("config_applied") == 1, "the unchanged file is not applied again"
    assert kinds.count("config_rejected") == 2
    tw.run("verify", check=0)


def test_check_config_loads_the_tls_files_and_a_failed_start_writes_nothing(tmp_path, sim, tw_factory):
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = polled_tw(tmp_path, sim, tw_factory, listen=listen)
    events = audit_event_count(tw)
    base = tw.config_path.read_text()
    ca1 = twtest.make_test_ca(tmp_path / "ca1")
    ca2 = twtest.make_test_ca(tmp_path / "ca2")
    web = tmp_path / "web.toml"

    def use_tls(cert, key, listen_on=listen):
        web.write_text(f'[tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n')
        tw.config_path.write_text(base.replace(f'listen = "{listen}"',
                                               f'listen = "{listen_on}"\nweb_config = "{web}"'))

    # A certificate and a key that each load, but do not belong together.
    use_tls(ca1["cert"], ca2["key"])
    proc = tw.run("check-config", check=2)
    errors = proc.stderr.splitlines()
    assert len(errors) == 2 and errors[1] == f"{tw.config_path}: 1 problem(s) found", proc.stderr
    assert errors[0].startswith(f"http.web_config: cannot load the TLS certificate or key ({ca1['cert']}): ")
    assert "mismatch" in errors[0], errors[0]
    proc = tw.run("run", check=2, timeout=30)
    assert f"tokenwarden: error: {errors[0]}" in proc.stderr.splitlines()
    assert audit_event_count(tw) == events

    # Garbage where the PEM files belong.
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hostname.example.com\n")
    use_tls(garbage, garbage)
    proc = tw.run("check-config", check=2)
    assert proc.stderr.startswith(f"http.web_config: cannot load the TLS certificate or key ({garbage}): ")
    assert proc.stderr.endswith(f"{tw.config_path}: 1 problem(s) found\n"), proc.stderr
    tw.run("run", check=2, timeout=30)
    assert audit_event_count(tw) == events

    # A matching pair passes.
    use_tls(ca1["cert"], ca1["key"])
    assert tw.run("check-config", check=0).stderr == ""

    # A start that fails after the database is open (the port is taken) records nothing either.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        use_tls(ca1["cert"], ca1["key"], listen_on=f"127.0.0.1:{taken.getsockname()[1]}")
        proc = tw.run("run", check=1, timeout=30)
        assert "cannot start the HTTP endpoint" in proc.stderr
    assert audit_event_count(tw) == events
    kinds = [r[0] for r in tw.query("SELECT event FROM audit_log")]
    assert "daemon_started" not in kinds and "config_applied" not in kinds


@pytest.mark.parametrize("key,url,why", [
    ("alertmanager_url", "ftp://127.0.0.1:9093", "must start with http:// or https://"),
    ("alertmanager_url", "http://127.0.0.1:99999", "invalid port"),
    ("webhook_url", "javascript:alert(1)", "must start with http:// or https://"),
    ("webhook_url", "https://", "no host"),
])
def test_check_config_refuses_an_unparsable_alerting_url(key, url, why, tmp_path, sim, tw_factory):
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "c1.token")], alerting=f'{key} = "{url}"\n')
    proc = tw.run("check-config", check=2)
    errors = proc.stderr.splitlines()
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith(f"alerting.{key}: invalid URL ") and why in errors[0], errors[0]
    assert errors[1] == f"{tw.config_path}: 1 problem(s) found"
    tw.run("run", check=2, timeout=30)
    assert not tw.db_path.exists()


def test_token_file_readable_by_others_is_a_warning_but_works(tmp_path, sim, tw_factory):
    sim.create("svc-a", [])
    token = tmp_path / "c1.token"
    tw = tw_factory([twtest.clustered_block("c1", sim, token)], listen=f"127.0.0.1:{twtest.free_port()}")
    token.chmod(0o644)
    warning = (f'clusters[0].token_file: "{token}" is readable by group or others (mode 0644); '
               "only the daemon's user should read it (chmod 600)")
    proc = tw.run("check-config", check=0)
    assert proc.stderr.splitlines() == [f"warning: {warning}"]
    assert proc.stdout.startswith(f"{tw.config_path}: OK (1 clusters")
    assert twtest.MANAGEMENT_TOKEN not in proc.stdout + proc.stderr

    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls("c1")) >= 1, what="a poll")
    assert tw.polls("c1")[0]["outcome"] == "ok"
    assert tw.stop_daemon() == 0
    started = [l for l in tw.daemon_log().splitlines() if f"daemon: configuration: {warning}" in l]
    assert len(started) == 1 and " warn " in started[0], tw.daemon_log()

    token.chmod(0o600)
    assert tw.run("check-config", check=0).stderr == ""


def test_token_file_with_a_byte_order_mark_or_a_directory_is_a_precise_error(tmp_path, sim, tw_factory):
    token = tmp_path / "c1.token"
    tw = tw_factory([twtest.clustered_block("c1", sim, token)])
    token.write_bytes(b"\xef\xbb\xbf" + twtest.MANAGEMENT_TOKEN.encode() + b"\n")
    bom = (f'clusters[0].token_file: token file "{token}" starts with a UTF-8 byte order mark; '
           "save it as plain text without one")
    proc = tw.run("check-config", check=2)
    assert proc.stderr.splitlines() == [bom, f"{tw.config_path}: 1 problem(s) found"]
    assert twtest.MANAGEMENT_TOKEN not in proc.stdout + proc.stderr
    proc = tw.run("run", check=2, timeout=30)
    assert f"tokenwarden: error: {bom}" in proc.stderr.splitlines()
    assert not tw.db_path.exists()
    # A one-off poll reads the file as the daemon's polls do: the poll fails with the same reason.
    tw.poll(check=1)
    assert tw.polls()[-1]["outcome"] == "failed"
    assert "starts with a UTF-8 byte order mark" in tw.polls()[-1]["error"]

    token.unlink()
    token.mkdir()
    proc = tw.run("check-config", check=2)
    assert proc.stderr.splitlines() == [
        f'clusters[0].token_file: token file "{token}" is a directory; token_file must name the file that holds the token',
        f"{tw.config_path}: 1 problem(s) found"]
