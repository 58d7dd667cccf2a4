"""Enforcement against tokenwarden-sim, checked through the simulator's request log: the DELETE
or PATCH for a violating token is sent exactly once, only after the grace period, never in
monitor mode, never for an exempt token, never after a failed or suspect poll, and never
beyond the safety limits."""
import json
import time

import pytest
import twtest


def policy(name, kind, action="revoke", grace="0s", extra=""):
    return f"""
[[policies]]
name = "{name}"
kind = "{kind}"
action = "{action}"
grace_period = "{grace}"
severity = "critical"
{extra}
"""


NEVER_EXPIRES = policy("must-expire", "max_lifetime", extra='max_lifetime = "30d"')
NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"


def soon(days):
    """An expiry `days` from now (compliant with a 30-day max_lifetime)."""
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def mutations(sim, method, token_id=None):
    reqs = [r for r in sim.requests() if r["method"] == method]
    if token_id is not None:
        reqs = [r for r in reqs if r["path"].endswith("/" + token_id)]
    return reqs


def make(tmp_path, sim_factory, tw_factory, policies, kind="http", mode="enforce", safety=NO_LIMITS):
    sim = sim_factory()
    if kind == "influxctl":
        block = twtest.influxctl_block("c1", sim, tmp_path)
    else:
        block = twtest.clustered_block("c1", sim, tmp_path / "t")
    tw = tw_factory([block], extra=policies, mode=mode, safety=safety)
    return sim, tw


def kinds(tw, token_id):
    return [e["event"] for e in tw.events() if e["token_id"] == token_id]


@pytest.mark.parametrize("kind", ["http", "influxctl"])
def test_revoke_once_after_grace(kind, tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory,
                   policy("must-expire", "max_lifetime", grace="2s",
                                                                   extra='max_lifetime = "30d"'), kind)
    bad = sim.create("no expiry", [{"action": "write", "resource": "db"}])
    good = sim.create("expires", [{"action": "read", "resource": "db"}], expires_at=soon(7))
    tw.poll(check=0)
    opened = [e for e in tw.events() if e["event"] == "violation_opened"]
    assert len(opened) == 1 and opened[0]["token_id"] == bad["id"]
    due = opened[0]["detail"]["action_due_at"]
    assert due is not None
    tw.poll(check=0)  # still within the grace period
    assert mutations(sim, "DELETE") == []
    time.sleep(2.1)
    tw.poll(check=0)
    deletes = mutations(sim, "DELETE", bad["id"])
    assert len(deletes) == 1 and deletes[0]["status"] == 204
    for _ in range(3):
        tw.poll(check=0)
    assert len(mutations(sim, "DELETE")) == 1, "exactly one DELETE, ever"
    assert mutations(sim, "DELETE", good["id"]) == []
    events = kinds(tw, bad["id"])
    for e in ("violation_opened", "action_planned", "action_succeeded", "token_revoked", "violation_resolved"):
        assert events.count(e) == 1, (e, events)
    resolved = [e for e in tw.events() if e["event"] == "violation_resolved"][0]
    assert resolved["detail"]["resolution"] == "revoked"
    v = tw.json("violations")
    assert v[0]["state"] == "resolved" and v[0]["action_state"] == "succeeded"
    tw.run("verify", check=0)


def test_restrict_patches_the_compliant_permissions_once(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, policy("no-star-write", "all_databases_grant", action="restrict", extra='actions = ["write"]'))
    t = sim.create("wide", [{"action": "write", "resource": "*"}, {"action": "read", "resource": "db1"}])
    tw.poll(check=0)
    tw.poll(check=0)
    tw.poll(check=0)
    patches = mutations(sim, "PATCH", t["id"])
    assert len(patches) == 1
    body = patches[0]["body"]
    body = json.loads(body) if isinstance(body, str) else body
    assert body == {"permissions": [{"action": "read", "resource": "db1"}]}
    resolved = [e for e in tw.events() if e["event"] == "violation_resolved"]
    assert [r["detail"]["resolution"] for r in resolved] == ["restricted"]
    assert mutations(sim, "DELETE") == []


def test_monitor_mode_never_acts(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES,
                   mode="monitor")
    t = sim.create("no expiry", [])
    for _ in range(3):
        tw.poll(check=0)
    assert mutations(sim, "DELETE") == [] and mutations(sim, "PATCH") == []
    assert kinds(tw, t["id"]).count("action_skipped") == 1
    skipped = [e for e in tw.events() if e["event"] == "action_skipped"][0]
    assert skipped["detail"]["reason"] == "monitor"
    # Back to enforce: the open violation is planned at the next cycle.
    tw.config_path.write_text(tw.config_path.read_text().replace('mode = "monitor"', 'mode = "enforce"'))
    tw.poll(check=0)
    assert len(mutations(sim, "DELETE", t["id"])) == 1


def test_per_policy_monitor_override(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, policy("must-expire", "max_lifetime", extra='max_lifetime = "30d"\nmode = "monitor"'))
    sim.create("no expiry", [])
    tw.poll(check=0)
    tw.poll(check=0)
    assert mutations(sim, "DELETE") == []


def test_exempt_token_is_never_touched(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    exempt = sim.create("vendor-acme integration", [])
    other = sim.create("plain", [])
    extra = NEVER_EXPIRES + f"""
[[exemptions]]
policy = "must-expire"
token_id = "{exempt['id']}"
reason = "vendor cannot rotate, OPS-1"
expires = 2027-06-01T00:00:00Z
"""
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=extra, safety=NO_LIMITS)
    for _ in range(3):
        tw.poll(check=0)
    assert mutations(sim, "DELETE", exempt["id"]) == []
    assert len(mutations(sim, "DELETE", other["id"])) == 1
    applied = [e for e in tw.events() if e["event"] == "exemption_applied"]
    assert len(applied) == 1 and applied[0]["token_id"] == exempt["id"]
    assert applied[0]["detail"]["reason"] == "vendor cannot rotate, OPS-1"


def test_no_action_after_failed_or_suspect_polls(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, policy("must-expire", "max_lifetime", grace="1s", extra='max_lifetime = "30d"'))
    keep = [sim.create(f"ok {i}", [], expires_at=soon(7)) for i in range(3)]
    bad = sim.create("no expiry", [])
    tw.poll(check=0)  # opens the violation, due in 1 s
    time.sleep(1.1)
    sim.fault(kind="status", status=500, count=1, method="GET")
    tw.poll(check=1)
    assert mutations(sim, "DELETE") == []
    sim.fault(kind="empty", count=1, method="GET")
    tw.poll(check=0)
    assert tw.polls()[-1]["outcome"] == "suspect"
    assert mutations(sim, "DELETE") == []
    tw.poll(check=0)  # healthy: now the action runs
    assert len(mutations(sim, "DELETE", bad["id"])) == 1
    assert all(mutations(sim, "DELETE", k["id"]) == [] for k in keep)


def test_safety_limits_halt_until_approved(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES,
                   safety="max_actions_per_cycle = 2\nmax_actions_percent = 100\n")
    doomed = [sim.create(f"no expiry {i}", []) for i in range(3)]
    sim.create("fine", [], expires_at=soon(7))
    tw.poll(check=0)
    tw.poll(check=0)
    assert mutations(sim, "DELETE") == []
    halted = [e for e in tw.events() if e["event"] == "enforcement_halted"]
    assert len(halted) == 1 and halted[0]["detail"]["planned"] == 3
    states = {v["token_id"]: v["state"] for v in tw.json("violations")}
    assert set(states.values()) == {"halted"}
    out = tw.run("approve", "--cluster", "c1", "--all", "--by", "alice", check=0).stdout
    assert "released 3" in out
    tw.poll(check=0)
    for d in doomed:
        assert len(mutations(sim, "DELETE", d["id"])) == 1
    approvals = [e for e in tw.events() if e["event"] == "action_approved"]
    assert len(approvals) == 3 and all(a["detail"]["by"] == "alice" for a in approvals)
    tw.poll(check=0)
    assert len(mutations(sim, "DELETE")) == 3


def test_percent_limit_halts(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES,
                   safety="max_actions_per_cycle = 100\nmax_actions_percent = 10\n")
    for i in range(2):
        sim.create(f"no expiry {i}", [])
    for i in range(8):
        sim.create(f"fine {i}", [], expires_at=soon(7))
    tw.poll(check=0)  # 2 actions of 10 active tokens = 20% > 10%
    assert mutations(sim, "DELETE") == []
    assert [e["event"] for e in tw.events()].count("enforcement_halted") == 1


def test_require_approval(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, policy("must-expire", "max_lifetime", extra='max_lifetime = "30d"\nrequire_approval = true'))
    t = sim.create("no expiry", [])
    tw.poll(check=0)
    tw.poll(check=0)
    assert mutations(sim, "DELETE") == []
    v = tw.json("violations", "--open")[0]
    assert v["state"] == "awaiting_approval" and v["action_state"] == "awaiting_approval"
    proc = tw.run("approve", str(v["action_id"] + 1000), check=1)
    assert "no action has id" in proc.stderr
    tw.run("approve", str(v["action_id"]), "--by", "bob", check=0)
    tw.run("approve", str(v["action_id"]), check=1)  # not awaiting any more
    tw.poll(check=0)
    assert len(mutations(sim, "DELETE", t["id"])) == 1
    ev = [e for e in tw.events() if e["event"] == "action_approved"]
    assert len(ev) == 1 and ev[0]["detail"]["by"] == "bob"


def test_failed_revoke_is_recorded_and_not_retried_before_backoff(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    t = sim.create("no expiry", [])
    sim.fault(kind="status", status=500, count=1, method="DELETE")
    tw.poll(check=0)
    assert len(mutations(sim, "DELETE", t["id"])) == 1
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert len(failed) == 1 and failed[0]["detail"]["final"] is False and failed[0]["detail"]["retry_at"]
    assert "answered 500" in failed[0]["detail"]["error"]
    tw.poll(check=0)
    tw.poll(check=0)
    assert len(mutations(sim, "DELETE", t["id"])) == 1, "the retry waits for its back-off (30 s)"
    v = tw.json("violations", "--open")[0]
    assert v["state"] == "enforcing" and v["attempts"] == 1


def test_revoke_404_is_not_believed(tmp_path, sim_factory, tw_factory):
    """A 404 to the DELETE of a token the read-back shows active is a failed attempt (retried)."""
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    t = sim.create("no expiry", [])
    sim.fault(kind="status", status=404, count=1, method="DELETE")
    tw.poll(check=0)
    assert [e for e in tw.events() if e["event"] == "action_succeeded"] == []
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert len(failed) == 1 and "still active" in failed[0]["detail"]["error"]
    assert failed[0]["detail"]["final"] is False and failed[0]["token_id"] == t["id"]


def test_dry_run_and_simulate_change_nothing(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, "")
    t = sim.create("no expiry", [])
    tw.poll(check=0)
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(NEVER_EXPIRES)
    rows = json.loads(tw.run("simulate", "--policies", str(candidate), "--format", "json", check=0).stdout)
    assert rows[0]["violations"] == 1 and rows[0]["would_revoke"] == 1 and rows[0]["halts"] is False
    tokens = json.loads(tw.run("simulate", "--policies", str(candidate), "--tokens", "--format", "json",
                               check=0).stdout)
    assert tokens[0]["token_id"] == t["id"] and tokens[0]["outcome"] == "revoke"
    # Adopt it, but dry-run first.
    tw.config_path.write_text(tw.config_path.read_text() + NEVER_EXPIRES)
    before = tw.query("SELECT COUNT(*) FROM audit_log")[0][0]
    out = json.loads(tw.poll("--dry-run", "--format", "json", check=0).stdout)
    assert out[0]["violations_opened"] == 1 and out[0]["actions_planned"] == 1
    assert tw.query("SELECT COUNT(*) FROM audit_log")[0][0] == before
    assert mutations(sim, "DELETE") == []
    bad = tmp_path / "bad.toml"
    bad.write_text('[[policies]]\nname = "x"\nkind = "max_age"\n')
    proc = tw.run("simulate", "--policies", str(bad), check=2)
    assert "policies[0].max_age: is required" in proc.stderr
