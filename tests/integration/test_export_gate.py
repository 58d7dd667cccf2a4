"""`[audit] require_export` in a one-shot `tokenwarden poll`: it runs no exporter, so it asks the
cursors the daemon's exporters stored. With no cursor (nothing ever left the host) a due
revocation is held back and recorded (once per poll) as enforcement_halted (export_lagging); once the
stored cursor shows the export caught up, the next poll sends it."""
import sqlite3
import time

import twtest

POLICY = """
[[policies]]
name = "must-expire"
kind = "max_lifetime"
action = "revoke"
grace_period = "0s"
severity = "critical"
max_lifetime = "30d"
"""


def test_one_shot_poll_waits_for_the_stored_export_cursor(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    bad = sim.create("no expiry", [{"action": "write", "resource": "db"}])
    audit = f"""
[audit]
require_export = true
export_max_lag = "10m"

[[audit.export]]
name = "copy"
type = "file"
path = "{tmp_path / 'audit.jsonl'}"
"""
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=audit + POLICY,
                    safety="max_actions_per_cycle = 100\nmax_actions_percent = 100\n")
    tw.poll(check=0)
    tw.poll(check=0)
    assert [r for r in sim.requests() if r["method"] == "DELETE"] == []
    held = [e for e in tw.events() if e["event"] == "enforcement_halted"]
    # Each one-shot poll is a process of its own: each records the hold it found.
    assert len(held) == 2 and {h["detail"]["reason"] for h in held} == {"export_lagging"}, held
    assert held[0]["detail"]["why"] == "export sink copy has not delivered anything yet"
    # What the daemon's exporter writes once the copy holds everything.
    head = tw.query("SELECT max(seq) FROM audit_log")[0][0]
    con = sqlite3.connect(tw.db_path)
    with con:
        con.execute("INSERT INTO export_cursors(name, target, delivered_seq, delivered_at) "
                    "VALUES ('copy', 'file:x', ?, ?)", (head, int(time.time() * 1000)))
    con.close()
    tw.poll(check=0)
    deletes = [r for r in sim.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 1 and deletes[0]["path"].endswith("/" + bad["id"]), deletes
    assert ("token_revoked", bad["id"]) in tw.token_events() or any(
        e["event"] == "action_succeeded" for e in tw.events())
