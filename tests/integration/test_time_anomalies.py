"""Time is checked, not trusted (issue 9, item 5), against tokenwarden-sim.

A createdAt in the future does not hide a token from age-based policies: ages run from the earlier
of createdAt and the first time tokenwarden listed the token. The anomaly is recorded once per
token and reason (`token_anomaly`), counted in `tokenwarden_token_anomalies_total` and shown by
`tokens` and `report`. Placeholder timestamps (0001-01-01, 1970-01-01) mean unset.

The daemon's clock is the real one, so "first seen 400 days ago" is set up by moving the token
row's first_seen back in the database (the tokens table is state, not the hash-chained log)."""
import json
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import twtest
from twtest import metric

FUTURE = "9999-12-31T00:00:00Z"
WRITE_ALL = [{"action": "write", "resource": "*"}]

POLICIES = """
[[policies]]
name = "no-write-star"
kind = "all_databases_grant"
actions = ["write"]
min_token_age = "1h"
action = "alert"
severity = "critical"

[[policies]]
name = "rotate-yearly"
kind = "max_age"
max_age = "365d"
action = "alert"
severity = "warning"
"""


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def make(tmp_path, sim, tw_factory, kind="http", **kwargs):
    if kind == "influxctl":
        block = twtest.influxctl_block("c1", sim, tmp_path)
    else:
        block = twtest.clustered_block("c1", sim, tmp_path / "t")
    return tw_factory([block], extra=POLICIES, **kwargs)


def anomalies(tw):
    return [(e["token_id"], e["detail"]["reason"], e["detail"]["value"])
            for e in tw.events(kinds={"token_anomaly"})]


def opened(tw):
    return sorted((e["token_id"], e["detail"]["policy"]) for e in tw.events(kinds={"violation_opened"}))


def backdate_first_seen(tw, token_id, delta):
    """Pretends tokenwarden first listed the token `delta` ago: as if `delta` had passed, the
    checkpoint's due time (when the clock alone may change a verdict, docs/database.md) moves back
    by as much, so the next one-shot poll is not told that nothing can have changed."""
    when = iso(datetime.now(timezone.utc) - delta)
    con = sqlite3.connect(tw.db_path)
    try:
        with con:
            n = con.execute("UPDATE tokens SET first_seen = ? WHERE token_id = ?", (when, token_id)).rowcount
            con.execute("UPDATE poll_checkpoints SET due_at = due_at - ? WHERE due_at IS NOT NULL",
                        (int(delta.total_seconds() * 1000),))
        assert n == 1
    finally:
        con.close()
    return when


@pytest.mark.parametrize("kind", ["http", "influxctl"])
def test_future_created_at_cannot_escape_age_policies(kind, tmp_path, sim, tw_factory):
    """The repro of issue 9: a write-* token created 9999-12-31 is flagged by all_databases_grant
    (min_token_age 1h) and max_age 365d once tokenwarden has known it long enough."""
    sim.seed([{"id": "future", "description": "skewed", "permissions": WRITE_ALL, "createdAt": FUTURE},
              {"id": "old", "description": "old", "permissions": WRITE_ALL,
               "createdAt": "2024-01-01T00:00:00Z"}])
    tw = make(tmp_path, sim, tw_factory, kind)
    tw.poll(check=0)
    # The 2024 token is old by its createdAt; the future one was first seen just now.
    assert opened(tw) == [("old", "no-write-star"), ("old", "rotate-yearly")]
    poll_time = tw.query("SELECT max(finished_at) FROM polls")[0][0]
    events = tw.events(kinds={"token_anomaly"})
    assert [(e["cluster"], e["token_id"], e["detail"]) for e in events] == [
        ("c1", "future", {"reason": "created_in_future", "value": "9999-12-31T00:00:00.000Z",
                          "poll_time": poll_time})]

    # Known for 2 hours: old enough for min_token_age, not for max_age.
    backdate_first_seen(tw, "future", timedelta(hours=2))
    tw.poll(check=0)
    assert ("future", "no-write-star") in opened(tw)
    assert ("future", "rotate-yearly") not in opened(tw)

    # Known for 400 days: too old for max_age as well.
    backdate_first_seen(tw, "future", timedelta(days=400))
    tw.poll(check=0)
    assert [p for t, p in opened(tw) if t == "future"] == ["no-write-star", "rotate-yearly"]
    detail = [e["detail"] for e in tw.events(kinds={"violation_opened"})
              if e["token_id"] == "future" and e["detail"]["policy"] == "rotate-yearly"][0]
    assert "first seen 400d ago (created_at 9999-12-31T00:00:00.000Z is later)" in json.dumps(detail)

    for _ in range(2):
        tw.poll(check=0)
    assert anomalies(tw) == [("future", "created_in_future", "9999-12-31T00:00:00.000Z")], \
        "recorded exactly once over several polls"
    assert tw.run("verify", check=0).returncode == 0


def test_anomaly_recorded_once_metric_tokens_and_report(tmp_path, sim, tw_factory):
    """With the daemon: one token_anomaly per token and reason over many polls, the metric by
    cluster and reason, the `tokens` column and the report section."""
    near_future = iso(datetime.now(timezone.utc) + timedelta(minutes=2))  # within the tolerance
    sim.seed([{"id": "future", "description": "skewed", "permissions": WRITE_ALL, "createdAt": FUTURE},
              {"id": "unset", "description": "go zero", "createdAt": "0001-01-01T00:00:00Z"},
              {"id": "epoch", "description": "epoch", "createdAt": "1970-01-01T00:00:00Z"},
              {"id": "skew", "description": "2 min ahead", "createdAt": near_future},
              {"id": "fine", "description": "fine", "createdAt": "2025-06-01T00:00:00Z"}])
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = make(tmp_path, sim, tw_factory, listen=listen)
    tw.start_daemon()
    twtest.wait_for(lambda: len([p for p in tw.polls() if p["outcome"] == "ok"]) >= 1, what="a poll")
    # A change forces the list to be decoded and compared again; nothing is recorded twice.
    sim.put_token("fine", {"description": "fine, renamed", "createdAt": "2025-06-01T00:00:00Z"})
    sim.put_token("future", {"description": "skewed, renamed", "permissions": WRITE_ALL, "createdAt": FUTURE})
    twtest.wait_for(lambda: [e for e in tw.events(kinds={"token_updated"}) if e["token_id"] == "future"],
                    what="the update")
    n = len(tw.polls())
    twtest.wait_for(lambda: len(tw.polls()) >= n + 3, what="three more polls")
    assert sorted(anomalies(tw)) == [("epoch", "created_at_unset", "1970-01-01T00:00:00.000Z"),
                                     ("future", "created_in_future", "9999-12-31T00:00:00.000Z"),
                                     ("unset", "created_at_unset", "0001-01-01T00:00:00.000Z")]
    m = tw.metrics()
    assert metric(m, "tokenwarden_token_anomalies_total", cluster="c1", reason="created_in_future") == 1
    assert metric(m, "tokenwarden_token_anomalies_total", cluster="c1", reason="created_at_unset") == 2
    assert metric(m, "tokenwarden_audit_events_total", event="token_anomaly") == 3
    promtool = subprocess.run(["which", "promtool"], capture_output=True, text=True).stdout.strip()
    if promtool:
        _, _, body = tw.http_get("/metrics")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True)
        assert check.stdout + check.stderr == "", check.stdout + check.stderr
    assert tw.stop_daemon() == 0

    # After a restart the series start at 0 and nothing is recorded again.
    tw.start_daemon()
    n = len(tw.polls())
    twtest.wait_for(lambda: len(tw.polls()) >= n + 2, what="two polls after the restart")
    m = tw.metrics()
    assert metric(m, "tokenwarden_token_anomalies_total", cluster="c1", reason="created_in_future") == 0
    assert metric(m, "tokenwarden_token_anomalies_total", cluster="c1", reason="created_at_unset") == 0
    assert len(anomalies(tw)) == 3
    assert tw.stop_daemon() == 0

    rows = {r["token_id"]: r for r in tw.json("tokens")}
    assert rows["future"]["anomalies"] == ["created_in_future"]
    assert rows["unset"]["anomalies"] == ["created_at_unset"]
    assert rows["epoch"]["anomalies"] == ["created_at_unset"]
    assert rows["skew"]["anomalies"] == [] and rows["fine"]["anomalies"] == []
    # A placeholder createdAt is no createdAt; the token is aged from its first sighting.
    assert rows["unset"]["created_at"] is None and rows["epoch"]["created_at"] is None
    assert rows["future"]["created_at"] == "9999-12-31T00:00:00.000Z"
    table = tw.run("tokens", check=0).stdout
    assert "created_in_future" in table and "created_at_unset" in table
    # As of before the first poll, nothing was recorded yet.
    assert all(r["anomalies"] == [] for r in tw.json("tokens", "--at", "2000-01-01"))

    now = datetime.now(timezone.utc)
    frm, to = iso(now - timedelta(days=1)), iso(now + timedelta(minutes=1))
    rep = json.loads(tw.run("report", "--from", frm, "--to", to, "--format", "json", check=0).stdout)
    assert sorted((a["cluster"], a["token_id"], a["reason"], a["value"]) for a in rep["inventory"]["anomalies"]) == [
        ("c1", "epoch", "created_at_unset", "1970-01-01T00:00:00.000Z"),
        ("c1", "future", "created_in_future", "9999-12-31T00:00:00.000Z"),
        ("c1", "unset", "created_at_unset", "0001-01-01T00:00:00.000Z")]
    md = tw.run("report", "--from", frm, "--to", to, "--format", "md", check=0).stdout
    assert "**3 time anomalies** recorded" in md
    assert "| c1 | future | created\\_in\\_future | 9999-12-31T00:00:00.000Z |" in md  # Markdown-escaped
    csv = tw.run("report", "--from", frm, "--to", to, "--format", "csv", check=0).stdout
    assert "section,time_anomalies\ncluster,token_id,reason,value,recorded_at\n" in csv
    assert "\nc1,future,created_in_future,9999-12-31T00:00:00.000Z," in csv
    html = tw.run("report", "--from", frm, "--to", to, "--format", "html", check=0).stdout
    assert "3 time anomalies</strong>" in html


@pytest.mark.parametrize("kind", ["http", "influxctl"])
def test_placeholder_expiry_and_revocation_mean_unset(kind, tmp_path, sim, tw_factory):
    sim.seed([{"id": "p1", "description": "go zero", "permissions": [{"action": "read", "resource": "db"}],
               "createdAt": "2025-01-01T00:00:00Z", "expiresAt": "0001-01-01T00:00:00Z",
               "revokedAt": "0001-01-01T00:00:00Z"},
              {"id": "p2", "description": "epoch", "createdAt": "2025-01-01T00:00:00Z",
               "expiresAt": "1970-01-01T00:00:00Z", "revokedAt": "1970-01-01T00:00:00Z"}])
    tw = make(tmp_path, sim, tw_factory, kind)
    for _ in range(2):
        tw.poll(check=0)
    rows = {r["token_id"]: r for r in tw.json("tokens")}
    for tid in ("p1", "p2"):
        assert rows[tid]["status"] == "active", rows[tid]
        assert rows[tid]["expires_at"] is None and rows[tid]["revoked_at"] is None
        assert rows[tid]["created_at"] == "2025-01-01T00:00:00.000Z"
        assert rows[tid]["anomalies"] == []
    assert tw.token_events() == [("token_discovered", "p1"), ("token_discovered", "p2")]
    assert anomalies(tw) == []


def test_placeholder_created_at_from_influxctl_objects(tmp_path, sim, tw_factory):
    """influxctl prints protobuf Timestamps: {} for 1970 and {"seconds":-62135596800} for Go's zero
    time; both are a created_at_unset anomaly, recorded with the object as printed."""
    sim.seed([{"id": "unset", "description": "go zero", "createdAt": "0001-01-01T00:00:00Z"},
              {"id": "epoch", "description": "epoch", "createdAt": "1970-01-01T00:00:00Z"}])
    tw = make(tmp_path, sim, tw_factory, "influxctl")
    for _ in range(3):
        tw.poll(check=0)
    assert sorted(anomalies(tw)) == [("epoch", "created_at_unset", "{}"),
                                     ("unset", "created_at_unset", '{"seconds":-62135596800}')]
