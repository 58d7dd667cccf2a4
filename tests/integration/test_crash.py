"""Crash safety: the daemon is killed with SIGKILL at random moments across many cycles while
tokens change. Afterwards the audit chain verifies, SQLite's integrity check passes, every
expected event exists exactly once, and no token received two DELETEs (or two PATCHes)."""
import collections
import random
import signal
import subprocess
import time

import twtest


POLICIES = twtest.REVOKE_AND_RESTRICT_POLICIES


def test_sigkill_at_random_moments(tmp_path, sim_factory, tw_factory):
    rng = random.Random(20261128)
    sim = sim_factory()
    for i in range(30):
        sim.create(f"svc-base-{i}", [{"action": "read", "resource": f"db{i}"}], expires_at=twtest.soon(7))
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=POLICIES,
                    safety="max_actions_per_cycle = 100\nmax_actions_percent = 100\n")
    doomed, wide, others = [], [], []
    kills = 0
    for it in range(30):
        if rng.random() < 0.6:
            doomed.append(sim.create(f"doomed {it}", [{"action": "write", "resource": "db"}])["id"])
        if rng.random() < 0.5:
            wide.append(sim.create(f"svc-wide-{it}", [{"action": "write", "resource": "*"},
                                                      {"action": "read", "resource": "db"}],
                                   expires_at=twtest.soon(7))["id"])
        if rng.random() < 0.4:
            others.append(sim.create(f"svc-new-{it}", [], expires_at=twtest.soon(7))["id"])
        if others and rng.random() < 0.3:
            sim.api("PATCH", f"/tokens/{rng.choice(others)}", {"description": f"svc-renamed-{it}"})
        tw.start_daemon()
        time.sleep(rng.uniform(0.05, 2.2))
        tw.daemon.send_signal(signal.SIGKILL)
        tw.daemon.wait()
        tw.daemon = None
        kills += 1

    # Let a last, uninterrupted run finish the work, then stop it cleanly.
    tw.start_daemon()

    def settled():
        inv = {t["token_id"]: t for t in tw.json("tokens")}
        return (all(inv.get(d, {}).get("status") == "revoked" for d in doomed) and
                all(inv.get(w, {}).get("permissions") == [{"action": "read", "resource": "db"}] for w in wide) and
                not tw.json("violations", "--open", "--policy", "no-star-write") and
                not tw.json("violations", "--open", "--policy", "doomed-must-expire"))

    twtest.wait_for(settled, timeout=60, interval=0.5, what="all doomed revoked and wide restricted")
    assert tw.stop_daemon() == 0

    # The audit log is intact and SQLite is consistent.
    tw.run("verify", check=0)
    integrity = subprocess.run(["sqlite3", str(tw.db_path), "PRAGMA integrity_check"], capture_output=True,
                               text=True, check=True).stdout.strip()
    assert integrity == "ok"

    # No token received two DELETEs or two PATCHes.
    reqs = sim.requests()
    deletes = collections.Counter(r["path"].rsplit("/", 1)[1] for r in reqs if r["method"] == "DELETE")
    patches = collections.Counter(r["path"].rsplit("/", 1)[1] for r in reqs if r["method"] == "PATCH"
                                  and r["path"].rsplit("/", 1)[1] in set(wide))
    assert set(deletes) == set(doomed) and max(deletes.values()) == 1, deletes
    assert set(patches) == set(wide) and max(patches.values()) == 1, patches

    # Every expected event exists exactly once.
    events = tw.events()
    by_token = collections.defaultdict(collections.Counter)
    for e in events:
        if e["token_id"]:
            by_token[e["token_id"]][e["event"]] += 1
    for t in doomed:
        c = by_token[t]
        assert c["token_discovered"] + c["token_created"] == 1, (t, c)
        for kind in ("violation_opened", "action_planned", "action_succeeded", "token_revoked",
                     "violation_resolved"):
            assert c[kind] == 1, (t, kind, c)
        assert c["action_failed"] == 0 and c["action_skipped"] == 0, (t, c)
    for t in wide:
        c = by_token[t]
        for kind in ("violation_opened", "action_planned", "action_succeeded", "violation_resolved"):
            assert c[kind] == 1, (t, kind, c)
        assert c["token_updated"] == 1, (t, c)
    resolutions = [e["detail"]["resolution"] for e in events if e["event"] == "violation_resolved"]
    assert resolutions.count("revoked") == len(doomed)
    assert resolutions.count("restricted") == len(wide)
    for t in others:
        assert by_token[t]["token_discovered"] + by_token[t]["token_created"] == 1
    starts = [e for e in events if e["event"] == "daemon_started"]
    assert len(starts) == kills + 1
