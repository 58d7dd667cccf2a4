"""The real tokenwarden binary polling tokenwarden-sim over HTTP, HTTPS and influxctl.

Tokens are created, updated, revoked and deleted between polls; each change must appear as
exactly one audit event, and an unchanged poll must write only its poll row.
"""
import json

import pytest
import twtest

TOKEN_EVENTS = {"token_discovered", "token_created", "token_updated", "token_revoked",
                "token_expired", "token_removed"}


def make_env(kind, tmp_path, sim_factory, tw_factory):
    tls = twtest.make_test_ca(tmp_path / "ca") if kind == "https" else None
    sim = sim_factory(flavor="dedicated" if kind == "dedicated" else "clustered", tls=tls)
    if kind == "influxctl":
        block = twtest.influxctl_block("c1", sim, tmp_path)
    else:
        block = twtest.clustered_block("c1", sim, tmp_path / "mgmt.token")
    return sim, tw_factory([block])


@pytest.mark.parametrize("kind", ["http", "https", "dedicated", "influxctl"])
def test_each_change_is_recorded_exactly_once(kind, tmp_path, sim_factory, tw_factory):
    sim, tw = make_env(kind, tmp_path, sim_factory, tw_factory)
    a = sim.create("alpha reader", [{"action": "read", "resource": "db1"}])
    b = sim.create("beta writer", [{"action": "write", "resource": "db2"}])
    c = sim.create("gamma", [{"action": "read", "resource": "*"}], expires_at="2099-01-01T00:00:00Z")
    d = sim.create("delta", [])

    tw.poll(check=0)
    assert sorted(tw.token_events()) == sorted(
        [("token_discovered", t["id"]) for t in (a, b, c, d)])
    discovered = {e["token_id"]: e["detail"] for e in tw.events(kinds={"token_discovered"})}
    assert discovered[a["id"]]["permissions"] == [{"action": "read", "resource": "db1"}]
    assert discovered[c["id"]]["expires_at"] == "2099-01-01T00:00:00.000Z"
    assert discovered[d["id"]]["expires_at"] is None
    assert tw.polls()[-1]["outcome"] == "ok" and tw.polls()[-1]["token_count"] == 4

    # An unchanged poll writes its poll row and nothing else.
    before = tw.query("SELECT COUNT(*) FROM audit_log")[0][0]
    tw.poll(check=0)
    assert tw.query("SELECT COUNT(*) FROM audit_log")[0][0] == before
    assert len(tw.polls()) == 2

    e = sim.create("epsilon", [{"action": "write", "resource": "db3"}])
    status, _ = sim.api("PATCH", f"/tokens/{a['id']}",
                        {"permissions": [{"action": "write", "resource": "db1"}]})
    assert status == 200
    status, _ = sim.api("DELETE", f"/tokens/{b['id']}")
    assert status == 204
    sim.remove_token(d["id"])
    tw.poll(check=0)

    changes = tw.token_events()[4:]
    assert sorted(changes) == sorted([
        ("token_created", e["id"]),
        ("token_updated", a["id"]),
        ("token_revoked", b["id"]),
        ("token_removed", d["id"]),
    ])
    update = tw.events(kinds={"token_updated"})[0]["detail"]
    assert update == {"before": {"permissions": [{"action": "read", "resource": "db1"}]},
                      "after": {"permissions": [{"action": "write", "resource": "db1"}]}}

    # Polling again records nothing new: every change exactly once.
    tw.poll(check=0)
    tw.poll(check=0)
    assert len(tw.token_events()) == 8

    inventory = {t["token_id"]: t for t in tw.json("tokens")}
    assert inventory[b["id"]]["status"] == "revoked"
    assert inventory[d["id"]]["status"] == "removed"
    assert inventory[e["id"]]["status"] == "active"
    assert inventory[a["id"]]["permissions"] == [{"action": "write", "resource": "db1"}]
    assert tw.run("verify", check=0).returncode == 0


def test_tokens_at_reconstructs_the_past(tmp_path, sim_factory, tw_factory):
    sim, tw = make_env("http", tmp_path, sim_factory, tw_factory)
    a = sim.create("alpha", [{"action": "read", "resource": "db1"}])
    tw.poll(check=0)
    t1 = tw.query("SELECT finished_at FROM polls ORDER BY id DESC LIMIT 1")[0][0]
    sim.api("PATCH", f"/tokens/{a['id']}", {"description": "alpha renamed"})
    b = sim.create("beta", [])
    tw.poll(check=0)
    t2 = tw.query("SELECT finished_at FROM polls ORDER BY id DESC LIMIT 1")[0][0]
    sim.api("DELETE", f"/tokens/{a['id']}")
    tw.poll(check=0)

    past = {t["token_id"]: t for t in tw.json("tokens", "--at", t1)}
    assert set(past) == {a["id"]}
    assert past[a["id"]]["description"] == "alpha"
    mid = {t["token_id"]: t for t in tw.json("tokens", "--at", t2)}
    assert set(mid) == {a["id"], b["id"]}
    assert mid[a["id"]]["description"] == "alpha renamed"
    assert mid[a["id"]]["status"] == "active"
    now = {t["token_id"]: t for t in tw.json("tokens")}
    assert now[a["id"]]["status"] == "revoked"
    # A time before the first poll: nothing was known.
    assert tw.json("tokens", "--at", "2000-01-01") == []


def test_list_commands_formats(tmp_path, sim_factory, tw_factory):
    sim, tw = make_env("http", tmp_path, sim_factory, tw_factory)
    sim.create("comma, \"quoted\" description", [{"action": "read", "resource": "db1"}])
    sim.create("=cmd|' /C calc'!A0", [])
    tw.poll(check=0)
    table = tw.run("tokens", check=0).stdout
    assert table.splitlines()[0].split()[:3] == ["CLUSTER", "TOKEN_ID", "STATUS"]
    csv_out = tw.run("tokens", "--format", "csv", check=0).stdout
    import csv, io
    rows = list(csv.DictReader(io.StringIO(csv_out)))
    descriptions = {r["description"] for r in rows}
    assert 'comma, "quoted" description' in descriptions
    assert "'=cmd|' /C calc'!A0" in descriptions  # formula guard
    hist = tw.json("history", "--event", "token_discovered")
    assert len(hist) == 2 and all(h["event"] == "token_discovered" for h in hist)
    assert tw.json("history", "--limit", "1")[0]["seq"] == tw.query("SELECT MAX(seq) FROM audit_log")[0][0]


def test_expiry_is_recorded_once(tmp_path, sim_factory, tw_factory):
    import datetime
    import time
    sim, tw = make_env("http", tmp_path, sim_factory, tw_factory)
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2))
    tok = sim.create("short-lived", [], expires_at=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z")
    tw.poll(check=0)
    twtest.wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) > soon + datetime.timedelta(milliseconds=200),
                    what="the token's expiry")
    tw.poll(check=0)
    tw.poll(check=0)
    assert tw.token_events() == [("token_discovered", tok["id"]), ("token_expired", tok["id"])]


def test_poll_cluster_option_and_unknown_cluster(tmp_path, sim_factory, tw_factory):
    s1 = sim_factory("s1")
    s2 = sim_factory("s2")
    s1.create("one", [])
    s2.create("two", [])
    tw = tw_factory([twtest.clustered_block("c1", s1, tmp_path / "t1"),
                     twtest.clustered_block("c2", s2, tmp_path / "t2")])
    tw.poll("--cluster", "c2", check=0)
    assert {p["cluster"] for p in tw.polls()} == {"c2"}
    proc = tw.poll("--cluster", "nope", check=2)
    assert "nope" in proc.stderr
    out = json.loads(tw.poll("--format", "json", check=0).stdout)
    assert {r["cluster"]: r["outcome"] for r in out} == {"c1": "ok", "c2": "ok"}


def test_dry_run_writes_nothing(tmp_path, sim_factory, tw_factory):
    sim, tw = make_env("http", tmp_path, sim_factory, tw_factory)
    sim.create("one", [])
    tw.poll(check=0)
    sim.create("two", [])
    before = tw.query("SELECT COUNT(*) FROM audit_log")[0][0]
    polls = len(tw.polls())
    out = json.loads(tw.poll("--dry-run", "--format", "json", check=0).stdout)
    assert out[0]["created"] == 1
    assert tw.query("SELECT COUNT(*) FROM audit_log")[0][0] == before
    assert len(tw.polls()) == polls


def test_token_file_is_reread_and_credentials_directory(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.create("one", [])
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "c1.token").write_text(twtest.MANAGEMENT_TOKEN + "\n")
    block = f"""
[[clusters]]
name = "c1"
type = "clustered"
url = "{sim.base_url}"
token_file = "c1.token"
timeout = "3s"
"""
    tw = tw_factory([block])
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    tw.run("poll", check=0, env=env)
    # Rotation: the cluster now wants a new token; the file is read again before the next poll.
    rotated = "mgmt-ROTATED-0123456789abcdef"
    sim.token_file.write_text(rotated + "\n")
    proc = tw.run("poll", check=1, env=env)
    assert "answered 401" in proc.stderr
    (creds / "c1.token").write_text(rotated + "\n")
    tw.run("poll", check=0, env=env)
    assert [p["outcome"] for p in tw.polls()] == ["ok", "failed", "ok"]
    # Without the credentials directory the relative name does not resolve.
    proc = tw.run("poll", check=1)
    assert "cannot read token file" in proc.stderr
