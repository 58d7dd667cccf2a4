"""influxctl as InfluxData ships it (issue 10, items 1-3), through the look-alike in each of its
realism modes ($TOKENWARDEN_INFLUXCTL_REALISM, docs/simulator.md): `null` for an empty list,
fields left out when empty, ids on Clustered, `warn` lines on stderr, an old or unparseable
version, a revoke that fails but exits 0, and the management token tokenwarden itself uses."""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import twtest

WRITE_STAR = [{"action": "write", "resource": "*"}]
STAR_POLICY = """
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
action = "revoke"
grace_period = "0s"
severity = "critical"
"""
NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Realism:
    """The look-alike's realism options, in a file it re-reads at every run."""

    def __init__(self, path):
        self.path = path
        self.set("")

    def set(self, text):
        self.path.write_text(text)

    @property
    def env(self):
        return {"TOKENWARDEN_INFLUXCTL_REALISM": f"@{self.path}"}


def make(tmp_path, sim_factory, tw_factory, extra="", listen="", poll_interval="1s"):
    sim = sim_factory()
    tw = tw_factory([twtest.influxctl_block("c1", sim, tmp_path)], extra=extra, safety=NO_LIMITS,
                    listen=listen, poll_interval=poll_interval)
    return sim, tw, Realism(tmp_path / "realism")


def influxctl(tmp_path, realism, *args):
    import subprocess
    return subprocess.run([twtest.binary("tokenwarden-influxctl"), "--config",
                           str(tmp_path / "influxctl-c1.toml"), *args],
                          capture_output=True, text=True, timeout=30,
                          env={**__import__("os").environ, **realism.env})


# -- 1. output as it really is --------------------------------------------------------------

@pytest.mark.parametrize("empty_list", ["null", "array"])
def test_a_cluster_without_tokens_polls_cleanly(empty_list, tmp_path, sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory)
    realism.set(f"empty_list={empty_list}")
    out = influxctl(tmp_path, realism, "token", "list", "--format", "json", "--include-revoked")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("null" if empty_list == "null" else "[]")
    for _ in range(2):
        tw.run("poll", check=0, env=realism.env)
    assert [p["outcome"] for p in tw.polls()] == ["ok", "ok"]
    # Tokens appear, then all go: the empty list after them is still read as a list.
    sim.create("one", [{"action": "read", "resource": "db1"}])
    tw.run("poll", check=0, env=realism.env)
    assert tw.polls()[-1]["token_count"] == 1


@pytest.mark.parametrize("options", ["omit_empty=on ids=on", "omit_empty=off ids=off"])
def test_empty_fields_left_out_or_present_read_the_same(options, tmp_path, sim_factory,
                                                         tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory)
    realism.set(options)
    bare = sim.create("", [])
    full = sim.create("full", [{"action": "read", "resource": "db1"}],
                      expires_at="2099-01-01T00:00:00Z")
    printed = json.loads(influxctl(tmp_path, realism, "token", "list", "--format", "json").stdout)
    by_id = {t["id"]: t for t in printed}
    if options.startswith("omit_empty=on"):
        assert "description" not in by_id[bare["id"]] and "permissions" not in by_id[bare["id"]]
        assert by_id[bare["id"]]["account_id"] == "00000000-0000-0000-0000-000000000000"
        assert "expires_at" not in by_id[bare["id"]]
        assert by_id[full["id"]]["permissions"][0]["id"] == "00000000-0000-0000-0000-000000000000"
    else:
        assert by_id[bare["id"]]["description"] == "" and by_id[bare["id"]]["permissions"] == []
        assert "account_id" not in by_id[bare["id"]]
    tw.run("poll", check=0, env=realism.env)
    tokens = {t["token_id"]: t for t in tw.json("tokens")}
    assert tokens[bare["id"]]["description"] == ""
    assert tokens[full["id"]]["expires_at"].startswith("2099-01-01T00:00:00")


def test_warn_lines_on_stderr_do_not_fail_polls_or_actions(tmp_path, sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory, extra=STAR_POLICY)
    realism.set("warn=3")
    out = influxctl(tmp_path, realism, "token", "list", "--format", "json")
    assert out.returncode == 0 and out.stderr.count("warn\t") == 3, out.stderr
    bad = sim.create("wide", WRITE_STAR)
    tw.run("poll", check=0, env=realism.env)
    assert tw.polls()[-1]["outcome"] == "ok"
    assert sim.tokens()[0]["revokedAt"] is not None
    ok = [e for e in tw.events() if e["event"] == "action_succeeded"]
    assert len(ok) == 1 and ok[0]["token_id"] == bad["id"]


# -- 2. the version floor -------------------------------------------------------------------

@pytest.mark.parametrize("version,found", [("2.9.8", "influxctl 2.9.8, too old"),
                                           ("none", "printed no version number")])
def test_an_old_or_unreadable_influxctl_is_refused_everywhere(version, found, tmp_path,
                                                              sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory)
    realism.set(f"version={version}")
    for args in (["check-config"], ["poll"], ["run"]):
        proc = tw.run(*args, env=realism.env, timeout=30)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "clusters[0].influxctl_path" in proc.stderr, proc.stderr
        assert found in proc.stderr and "2.10.0 or later" in proc.stderr, proc.stderr
    assert not any(r["method"] == "GET" for r in sim.requests()), "influxctl never ran a command"
    realism.set("version=2.10.0")
    tw.run("check-config", check=0, env=realism.env)


def test_a_reload_to_an_old_influxctl_is_refused(tmp_path, sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory, listen=f"127.0.0.1:{twtest.free_port()}")
    tw.start_daemon(env=realism.env)
    try:
        twtest.wait_for(lambda: tw.polls(), what="a first poll")
        realism.set("version=2.9.9")
        tw.daemon.send_signal(__import__("signal").SIGHUP)
        twtest.wait_for(lambda: twtest.metric(tw.metrics(),
                                              "tokenwarden_config_last_reload_successful") == 0,
                        what="the reload to be refused")
        assert "2.9.9" in tw.daemon_log() and "2.10.0" in tw.daemon_log()
        n = len(tw.polls())
        twtest.wait_for(lambda: len(tw.polls()) > n + 1, what="polling to go on")
    finally:
        tw.stop_daemon()


# -- 3. an unattended child -----------------------------------------------------------------

@pytest.mark.parametrize("revoke_exit", ["status", "zero"])
def test_a_revoke_that_fails_is_not_believed_whatever_influxctl_exits_with(
        revoke_exit, tmp_path, sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory, extra=STAR_POLICY)
    realism.set(f"revoke_exit={revoke_exit}")
    bad = sim.create("wide", WRITE_STAR)
    sim.create("other", WRITE_STAR)
    sim.fault(kind="status", status=500, method="DELETE", path=bad["id"] + "$")
    tw.run("poll", env=realism.env)
    by_id = {t["id"]: t for t in sim.tokens()}
    assert by_id[bad["id"]].get("revokedAt") is None
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert [f["token_id"] for f in failed] == [bad["id"]], failed
    ok = [e["token_id"] for e in tw.events() if e["event"] == "action_succeeded"]
    assert bad["id"] not in ok and len(ok) == 1, "the other token's revocation is its own call"
    # One id per `token revoke`: each DELETE the look-alike sent came from its own run.
    deletes = [r for r in sim.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 2


def test_influxctl_is_given_its_own_timeout_below_ours(tmp_path, sim_factory, tw_factory):
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory)
    # A list that takes longer than influxctl's --timeout (4 s of the 5 s deadline): influxctl
    # gives up and says so before tokenwarden would kill it.
    sim.fault(kind="timeout", method="GET", delay="20s")
    start = time.monotonic()
    proc = tw.run("poll", env=realism.env)
    assert proc.returncode == 1
    assert time.monotonic() - start < 15
    err = tw.polls()[-1]["error"]
    assert "exited with status 1" in err and "timed out" in err, err


# -- 3. the management token tokenwarden uses -------------------------------------------------

def test_the_management_token_expiry_is_exported_and_a_lapsed_one_explained(
        tmp_path, sim_factory, tw_factory):
    listen = f"127.0.0.1:{twtest.free_port()}"
    sim, tw, realism = make(tmp_path, sim_factory, tw_factory, listen=listen)
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=6)
    realism.set(f"mgmt_expires_at={rfc3339(soon)}")
    tw.start_daemon(env=realism.env)
    try:
        twtest.wait_for(lambda: any(p["outcome"] == "ok" for p in tw.polls()), what="a good poll")
        expiry = twtest.metric(tw.metrics(), "tokenwarden_management_token_expiry_timestamp_seconds",
                               cluster="c1")
        assert expiry == soon.timestamp()
        # Past the expiry the look-alike (as the cluster would) refuses the token, and even
        # `management list` fails: the expiry already known says why.
        twtest.wait_for(lambda: any("expired at" in (p["error"] or "") for p in tw.polls()),
                        timeout=30, what="a poll failed for the lapsed token")
        err = next(p["error"] for p in tw.polls() if "expired at" in (p["error"] or ""))
        assert "influxctl management create" in err and rfc3339(soon)[:19] in err, err
        assert twtest.MANAGEMENT_TOKEN not in tw.daemon_log()
        # A replacement is noticed at the next poll.
        realism.set("")
        n = len(tw.polls())
        twtest.wait_for(lambda: len(tw.polls()) > n and tw.polls()[-1]["outcome"] == "ok",
                        what="polls to succeed again")
        assert twtest.metric(tw.metrics(), "tokenwarden_management_token_expiry_timestamp_seconds",
                             cluster="c1") is None, "a token that never expires has no series"
    finally:
        tw.stop_daemon()
    for row in tw.query("SELECT detail FROM audit_log"):
        assert twtest.MANAGEMENT_TOKEN not in row[0]


def test_an_influxctl_not_installed_is_a_warning_and_fails_its_polls(tmp_path, tw_factory, sim):
    block = twtest.influxctl_block("c1", sim, tmp_path).replace(
        twtest.binary("tokenwarden-influxctl"), str(tmp_path / "not-installed"))
    tw = tw_factory([block])
    proc = tw.run("check-config", check=0)
    assert "warning: clusters[0].influxctl_path: cannot run" in proc.stderr, proc.stderr
    assert "its polls fail until it can be run" in proc.stderr
    assert tw.poll().returncode == 1
    assert "not-installed" in tw.polls()[-1]["error"]
