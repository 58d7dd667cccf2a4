"""Tampering with audit_log rows through the sqlite3 CLI is found by `tokenwarden verify`."""
import subprocess

import pytest
import twtest


@pytest.fixture
def recorded(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    for i in range(5):
        sim.create(f"token {i}", [{"action": "read", "resource": f"db{i}"}])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.poll(check=0)
    sim.create("late", [])
    tw.poll(check=0)
    assert tw.run("verify", check=0).stdout.count("intact") == 1
    return tw


def sqlite(tw, sql):
    # The append-only triggers stop casual edits; a tamperer drops them first.
    full = ("DROP TRIGGER IF EXISTS audit_events_no_update; "
            "DROP TRIGGER IF EXISTS audit_events_no_delete; " + sql)
    subprocess.run(["sqlite3", str(tw.db_path), full], check=True, capture_output=True)


def test_append_only_triggers_refuse_edits(recorded):
    proc = subprocess.run(["sqlite3", str(recorded.db_path),
                           "UPDATE audit_events SET detail = '{}' WHERE seq = 2"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "append-only" in proc.stderr


def test_changed_row(recorded):
    sqlite(recorded, "UPDATE audit_events SET detail = replace(detail, '\"read\"', '\"write\"') WHERE seq = 3")
    proc = recorded.run("verify", check=3)
    assert "seq 3" in proc.stderr and "modified" in proc.stderr


def test_deleted_row(recorded):
    sqlite(recorded, "DELETE FROM audit_events WHERE seq = 4")
    proc = recorded.run("verify", check=3)
    assert "seq 5" in proc.stderr and "deleted" in proc.stderr


def test_deleted_last_row(recorded):
    sqlite(recorded, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")
    proc = recorded.run("verify", check=3)
    assert "deleted from the end" in proc.stderr


def test_inserted_row(recorded):
    sqlite(recorded, "INSERT INTO audit_events(seq, recorded_at, cluster, token_id, event, detail, "
                     "prev_hash, hash) SELECT MAX(seq) + 1, '2030-01-01T00:00:00.000Z', 'c1', 'x', "
                     "'token_created', '{}', (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), "
                     "'0000' FROM audit_events")
    proc = recorded.run("verify", check=3)
    assert "BROKEN" in proc.stderr


def test_verify_json_and_db_option(recorded):
    import json
    proc = recorded.run("verify", "--db", str(recorded.db_path), "--format", "json", check=0)
    rep = json.loads(proc.stdout)
    assert rep["ok"] is True and rep["rows"] == rep["head_seq"] and len(rep["head_hash"]) == 64
