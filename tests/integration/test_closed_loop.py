"""The closed loop (issue 9, items 1-3) against tokenwarden-sim: an action counts only when a
read-back shows it, a violation whose action did not hold is planned again, and a token missing
from a list is recorded removed only when a direct read confirms it.

Retries are spaced by the enforcer's back-off (30 s, 1 min, 2 min, 4 min); the polls that must
see them run under libfaketime with the clock moved forward."""
import os
import signal
import subprocess
from pathlib import Path

import pytest
import twtest

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
WRITE_STAR = [{"action": "write", "resource": "*"}]
STAR_POLICY = """
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
action = "{action}"
grace_period = "{grace}"
severity = "critical"
"""
NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"


def later(seconds):
    """Environment that runs tokenwarden `seconds` in the future (libfaketime)."""
    assert Path(FAKETIME_LIB).exists(), "libfaketime is missing (Debian package faketime)"
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"+{seconds}s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def make(tmp_path, sim_factory, tw_factory, kind="http", action="revoke", grace="0s", sim_args=()):
    sim = sim_factory(extra_args=sim_args)
    if kind == "influxctl":
        block = twtest.influxctl_block("c1", sim, tmp_path)
    else:
        block = twtest.clustered_block("c1", sim, tmp_path / "t")
    tw = tw_factory([block], extra=STAR_POLICY.format(action=action, grace=grace), safety=NO_LIMITS)
    return sim, tw


def requests(sim, method, suffix):
    return [r for r in sim.requests() if r["method"] == method and r["path"].endswith(suffix)]


def fillers(sim, n=3):
    """Compliant tokens, so that one token vanishing stays under max_vanished_percent."""
    for i in range(n):
        sim.create(f"filler {i}", [{"action": "read", "resource": "db1"}])


def of(tw, token_id, *kinds):
    return [e for e in tw.events() if e["token_id"] == token_id and (not kinds or e["event"] in kinds)]


# -- 1. verified actions ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["http", "influxctl"])
@pytest.mark.parametrize("fault", [{"kind": "ignore"}, {"kind": "status", "status": 404}],
                         ids=["acknowledged", "answered-404"])
def test_a_revocation_without_effect_fails_retries_and_gives_up(kind, fault, tmp_path, sim_factory,
                                                                tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, kind)
    bad = sim.create("wide", WRITE_STAR)
    sim.fault(method="DELETE", **fault)  # every DELETE is answered, none revokes
    # Attempts at 0 s, then after the back-off of 30 s, 1 min, 2 min and 4 min.
    for offset in (0, 31, 92, 213, 454):
        tw.run("poll", env=later(offset) if offset else None)
    assert sim.tokens()[0].get("revokedAt") is None
    assert len(requests(sim, "DELETE", bad["id"])) == 5
    # influxctl's revoke fails on a 404 and its own list shows the token active: that failure
    # stands without a read-back. Every other answer is read back, and the read-back decides.
    read_back = not (kind == "influxctl" and fault["kind"] == "status")
    if read_back:
        # The first attempt is read back; each retry reads first (an earlier attempt may have
        # taken effect), then reads back.
        assert len(requests(sim, "GET", "/tokens/" + bad["id"])) == 1 + 2 * 4
    assert of(tw, bad["id"], "action_succeeded") == []
    failed = of(tw, bad["id"], "action_failed")
    assert [f["detail"]["final"] for f in failed] == [False, False, False, False, True]
    if read_back:
        assert all("still active" in f["detail"]["error"] for f in failed), failed[0]["detail"]
    v = tw.json("violations")
    assert v[0]["state"] == "failed"
    # More polls send nothing more: the violation failed for good and is alerted.
    tw.run("poll", env=later(1000))
    assert len(requests(sim, "DELETE", bad["id"])) == 5
    tw.run("verify", check=0)


def test_a_404_on_delete_and_read_back_is_recorded_as_gone(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    fillers(sim)
    bad = sim.create("wide", WRITE_STAR)
    sim.fault(kind="status", status=404, method="DELETE")
    sim.fault(kind="status", status=404, method="GET", path="/tokens/" + bad["id"])
    tw.poll(check=0)
    ok = of(tw, bad["id"], "action_succeeded")
    assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "gone", ok
    # The cluster now really has no such token: its removal is confirmed by a direct read.
    sim.clear_faults()
    sim.remove_token(bad["id"])
    tw.poll(check=0)
    removed = of(tw, bad["id"], "token_removed")
    assert len(removed) == 1 and removed[0]["detail"]["confirmed_by"] == "direct_read"
    resolved = of(tw, bad["id"], "violation_resolved")
    assert [r["detail"]["resolution"] for r in resolved] == ["removed"]


def test_a_verified_revocation_succeeds_once(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    bad = sim.create("wide", WRITE_STAR)
    tw.poll(check=0)
    tw.poll(check=0)
    ok = of(tw, bad["id"], "action_succeeded")
    assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "revoked"
    assert len(requests(sim, "DELETE", bad["id"])) == 1
    # One read-back per action; steady polls read nothing directly.
    reads = len(requests(sim, "GET", "/tokens/" + bad["id"]))
    assert reads == 1
    tw.poll(check=0)
    assert len(requests(sim, "GET", "/tokens/" + bad["id"])) == reads


def test_a_restriction_is_read_back(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, action="restrict")
    bad = sim.create("wide", WRITE_STAR + [{"action": "read", "resource": "db1"}])
    sim.fault(method="PATCH", kind="ignore", count=1)  # 200 with the new permissions, not applied
    tw.poll(check=0)
    failed = of(tw, bad["id"], "action_failed")
    assert len(failed) == 1 and "permissions" in failed[0]["detail"]["error"], failed
    tw.run("poll", env=later(31))
    ok = of(tw, bad["id"], "action_succeeded")
    assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "restricted"
    assert len(requests(sim, "PATCH", bad["id"])) == 2


# -- 2. a violation never stays settled while the cluster still shows it ------------------------

def test_an_action_that_did_not_hold_is_planned_again(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    bad = sim.create("wide", WRITE_STAR)
    tw.poll(check=0)
    assert [e["detail"]["outcome"] for e in of(tw, bad["id"], "action_succeeded")] == ["revoked"]
    # Somebody (or a confused cluster) brings the token back to life before the next poll.
    token = [t for t in sim.tokens() if t["id"] == bad["id"]][0]
    token.pop("revokedAt")
    sim.put_token(bad["id"], token)
    tw.poll(check=0)
    unheld = [e for e in of(tw, bad["id"], "action_failed") if e["detail"].get("outcome") == "did_not_hold"]
    assert len(unheld) == 1 and unheld[0]["detail"]["final"] is False
    planned = of(tw, bad["id"], "action_planned")
    assert len(planned) == 2, "planned again under the same rules"
    assert len(requests(sim, "DELETE", bad["id"])) == 2
    tw.poll(check=0)
    assert [r["detail"]["resolution"] for r in of(tw, bad["id"], "violation_resolved")] == ["revoked"]


def test_a_replanned_action_respects_approval(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    block = twtest.clustered_block("c1", sim, tmp_path / "t")
    tw = tw_factory([block], extra=STAR_POLICY.format(action="revoke", grace="0s") +
                    "require_approval = true\n", safety=NO_LIMITS)
    bad = sim.create("wide", WRITE_STAR)
    tw.poll(check=0)
    action_id = tw.json("violations")[0]["action_id"]
    tw.run("approve", str(action_id), "--by", "alice", check=0)
    tw.poll(check=0)
    assert len(requests(sim, "DELETE", bad["id"])) == 1
    token = [t for t in sim.tokens() if t["id"] == bad["id"]][0]
    token.pop("revokedAt")
    sim.put_token(bad["id"], token)
    tw.poll(check=0)
    v = tw.json("violations")[0]
    assert v["state"] == "awaiting_approval", v
    assert len(requests(sim, "DELETE", bad["id"])) == 1


# -- 3. removals only when confirmed ---------------------------------------------------------

def test_an_empty_list_is_never_taken_at_face_value(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    sim.generate(8)
    tw.poll(check=0)
    before = len(tw.events())
    sim.fault(kind="empty", method="GET", path="/tokens$", count=2)
    tw.poll()
    tw.poll()
    polls = tw.polls()
    assert [p["outcome"] for p in polls[-2:]] == ["suspect", "suspect"]
    assert "still exist" in polls[-1]["error"]
    tw.poll(check=0)
    new = [e["event"] for e in tw.events()[before:]]
    assert new == ["poll_suspect", "poll_suspect"], new
    assert len([r for r in sim.requests() if r["method"] == "GET" and "/tokens/" in r["path"]]) >= 8


def test_a_list_that_hides_revoked_tokens(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, sim_args=["--hide-revoked"])
    t = sim.create("fine", [{"action": "read", "resource": "db1"}])
    tw.poll(check=0)
    sim.api("DELETE", "/tokens/" + t["id"])  # revoked out of band; the list now leaves it out
    tw.poll(check=0)
    assert [e["event"] for e in of(tw, t["id"])] == ["token_created", "token_revoked"] or \
        [e["event"] for e in of(tw, t["id"])] == ["token_discovered", "token_revoked"]
    reads = len(requests(sim, "GET", "/tokens/" + t["id"]))
    assert reads == 1
    for _ in range(2):
        tw.poll(check=0)
    assert len(requests(sim, "GET", "/tokens/" + t["id"])) == reads, "a hidden revoked token is not read again"
    assert of(tw, t["id"], "token_removed") == []


def test_a_large_vanishing_is_confirmed_by_a_bounded_sample(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    sim.generate(80)
    tw.poll(check=0)
    tw.poll(check=0)  # the policy's revocations are recorded
    # Revoked and expired tokens (the generator makes some, the policy revokes others) would be
    # hidden, not gone: remove active ones.
    gone = sorted(r["token_id"] for r in tw.json("tokens", "--status", "active"))[:30]
    for i in gone:
        sim.remove_token(i)
    tw.poll(check=0)
    reads = [r for r in sim.requests() if r["method"] == "GET" and r["path"].split("/")[-1] in gone]
    assert len(reads) == 20
    removed = tw.events(kinds={"token_removed"})
    assert sorted(e["token_id"] for e in removed) == gone
    by = [e["detail"]["confirmed_by"] for e in removed]
    assert by.count("direct_read") == 20 and by.count("sample") == 10


def test_a_token_that_reappears_keeps_its_history_and_grace(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, grace="1h")
    fillers(sim)
    bad = sim.create("wide", WRITE_STAR)
    tw.poll(check=0)
    due = of(tw, bad["id"], "violation_opened")[0]["detail"]["action_due_at"]
    token = [t for t in sim.tokens() if t["id"] == bad["id"]][0]
    sim.remove_token(bad["id"])
    tw.poll(check=0)
    assert len(of(tw, bad["id"], "token_removed")) == 1
    sim.seed(token)  # the same id, listed again
    tw.poll(check=0)
    events = [e["event"] for e in of(tw, bad["id"])]
    assert events.count("token_discovered") == 1 and events.count("token_reappeared") == 1, events
    assert "token_created" not in events, "a token listed again is not a new token"
    back = of(tw, bad["id"], "token_reappeared")[0]["detail"]
    assert back["before"]["status"] == "removed" and back["after"]["status"] == "active"
    assert back["after"]["created_at"] == back["before"]["created_at"]
    opened = of(tw, bad["id"], "violation_opened")
    assert len(opened) == 2 and opened[1]["detail"]["action_due_at"] == due
    rows = tw.json("tokens")
    assert [r["status"] for r in rows if r["token_id"] == bad["id"]] == ["active"]


# -- crash between the DELETE and its read-back ------------------------------------------------

def test_a_crash_between_delete_and_read_back_converges(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    bad = sim.create("wide", WRITE_STAR)
    sim.fault(kind="timeout", method="GET", path="/tokens/" + bad["id"], count=1)
    proc = subprocess.Popen([twtest.binary("tokenwarden"), "--config", str(tw.config_path), "poll"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    twtest.wait_for(lambda: requests(sim, "DELETE", bad["id"]), what="the DELETE")
    twtest.wait_for(lambda: requests(sim, "GET", "/tokens/" + bad["id"]) or
                    any(r.get("fault") for r in sim.requests()), what="the read-back")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sim.clear_faults()
    tw.poll(check=0)
    tw.poll(check=0)
    assert len(requests(sim, "DELETE", bad["id"])) == 1
    ok = of(tw, bad["id"], "action_succeeded")
    assert len(ok) == 1
    assert [r["detail"]["resolution"] for r in of(tw, bad["id"], "violation_resolved")] == ["revoked"]
    tw.run("verify", check=0)


def test_a_revocation_whose_answer_was_lost_is_read_back_not_resent(tmp_path, sim_factory, tw_factory):
    """The DELETE is carried out but its answer is cut short: the read-back shows it took effect."""
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    bad = sim.create("wide", WRITE_STAR)
    sim.fault(kind="truncate", method="DELETE", count=1)
    tw.poll(check=0)
    ok = of(tw, bad["id"], "action_succeeded")
    # Revoked, but nothing acknowledged it: not recorded as a revocation the cluster confirmed.
    assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "already_revoked", of(tw, bad["id"])
    assert of(tw, bad["id"], "action_failed") == []
    tw.poll(check=0)
    assert len(requests(sim, "DELETE", bad["id"])) == 1



def test_a_failed_read_back_fails_the_attempt_and_the_next_poll_settles_it(tmp_path, sim_factory,
                                                                            tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    bad = sim.create("wide", WRITE_STAR)
    sim.fault(kind="status", status=500, method="GET", path="/tokens/" + bad["id"], count=1)
    tw.poll(check=0)
    failed = of(tw, bad["id"], "action_failed")
    assert len(failed) == 1 and "could not read the token back" in failed[0]["detail"]["error"], failed
    assert of(tw, bad["id"], "action_succeeded") == []
    tw.poll(check=0)  # the list shows it revoked: settled without another request
    ok = of(tw, bad["id"], "action_succeeded")
    assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "reconciled"
    assert len(requests(sim, "DELETE", bad["id"])) == 1
