"""Signed checkpoints and exported copies of the audit log, end to end: `tokenwarden keygen`, a
daemon (and a one-shot poll) signing with [audit] signing_key_file (a path or a systemd credential
name), and `verify --public-key` / `verify --export` against what an attacker with write access
to the database does: rewrite a row and recompute every later hash (docs/database.md), or forge a
checkpoint with another key. The private key must reach no database, log, report or export."""
import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess

import pytest
import twtest

GENESIS = "0" * 64


def keygen(tmp_path, name="keys", *extra, check=0):
    out = tmp_path / name
    proc = subprocess.run([twtest.binary("tokenwarden"), "keygen", "--out", str(out), *extra],
                          capture_output=True, text=True)
    assert proc.returncode == check, proc.stderr
    return out, proc


def key_body(key_dir):
    """The base64 body of the private key (what must never leak), and its raw bytes' base64."""
    lines = (key_dir / "checkpoint.key").read_text().splitlines()
    return "".join(l for l in lines if not l.startswith("-----"))


def signing_config(key_file, events=5, interval="1h"):
    return (f'\n[audit]\nsigning_key_file = "{key_file}"\n'
            f'checkpoint_events = {events}\ncheckpoint_interval = "{interval}"\n')


def canonical(seq, recorded_at, cluster, token_id, event, detail):
    # docs/database.md: the JSON array without spaces, detail as a JSON string.
    return json.dumps([seq, recorded_at, cluster, token_id, event, detail],
                      separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


def rows(db_path):
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, "
                           "hash FROM audit_events ORDER BY seq").fetchall()
    finally:
        con.close()


def export_line(r):
    seq, recorded_at, cluster, token_id, event, detail, prev_hash, h = r
    return json.dumps({"seq": seq, "recorded_at": recorded_at, "cluster": cluster,
                       "token_id": token_id, "event": event, "detail": detail,
                       "prev_hash": prev_hash, "hash": h}, separators=(",", ":"))


def rewrite_and_recompute(db_path, seq, new_detail):
    """What an attacker with write access does: edit one row, recompute the chain after it."""
    con = sqlite3.connect(db_path)
    con.executescript("DROP TRIGGER IF EXISTS audit_events_no_update; "
                      "DROP TRIGGER IF EXISTS audit_events_no_delete;")
    con.execute("UPDATE audit_events SET detail = ? WHERE seq = ?", (new_detail, seq))
    prev = con.execute("SELECT prev_hash FROM audit_events WHERE seq = ?", (seq,)).fetchone()[0]
    for r in con.execute("SELECT seq, recorded_at, cluster, token_id, event, detail FROM "
                         "audit_events WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
        h = hashlib.sha256((prev + canonical(*r)).encode()).hexdigest()
        con.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, r[0]))
        prev = h
    con.execute("UPDATE chain_head SET hash = ? WHERE id = 1", (prev,))
    con.commit()
    con.close()


@pytest.fixture
def signed(tmp_path, sim_factory, tw_factory):
    """A database with events and checkpoints from one-shot polls."""
    keys, _ = keygen(tmp_path)
    sim = sim_factory()
    for i in range(6):
        sim.create(f"token {i}", [{"action": "read", "resource": f"db{i}"}])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=signing_config(keys / "checkpoint.key"))
    tw.poll(check=0)
    sim.create("late", [])
    tw.poll(check=0)
    return tw, keys, sim


def test_keygen_modes_and_files(tmp_path):
    out, proc = keygen(tmp_path)
    key, pub = out / "checkpoint.key", out / "checkpoint.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert "LoadCredential=checkpoint.key:/etc/tokenwarden/credentials/checkpoint.key" in proc.stdout
    assert "key id: " in proc.stdout and key_body(out) not in proc.stdout + proc.stderr
    # Readable by OpenSSL as an Ed25519 pair.
    text = subprocess.run(["openssl", "pkey", "-in", str(key), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "ED25519" in text.upper()
    before = key.read_text()
    _, again = keygen(tmp_path, "keys", check=2)
    assert "exists" in again.stderr and key.read_text() == before
    keygen(tmp_path, "keys", "--force")
    assert key.read_text() != before and stat.S_IMODE(key.stat().st_mode) == 0o600
    help_text = subprocess.run([twtest.binary("tokenwarden"), "keygen", "--help"],
                               capture_output=True, text=True).stdout
    assert "0600" in help_text and "--force" in help_text


def test_one_shot_poll_signs_and_verify_proves(signed):
    tw, keys, _ = signed
    cps = tw.events(kinds={"checkpoint_signed"})
    assert len(cps) == 2  # one per poll that appended something
    last = cps[-1]
    assert last["detail"]["head_seq"] == last["seq"] - 1
    proc = tw.run("verify", "--public-key", str(keys / "checkpoint.pub"), check=0)
    assert "proven up to seq" in proc.stdout
    rep = json.loads(tw.run("verify", "--public-key", str(keys / "checkpoint.pub"),
                            "--format", "json", check=0).stdout)
    assert rep["ok"] and rep["checkpoints"]["count"] >= 2
    assert rep["checkpoints"]["unsigned_tail"] == 0


def test_no_second_checkpoint_without_new_events(signed):
    tw, keys, _ = signed
    before = tw.query("SELECT MAX(seq) FROM audit_events")[0][0]
    last_event = tw.query("SELECT event FROM audit_events ORDER BY seq DESC LIMIT 1")[0][0]
    assert last_event == "checkpoint_signed"
    tw.poll(check=0)
    tail = tw.query("SELECT event FROM audit_events WHERE seq > ? ORDER BY seq", (before,))
    # A poll with nothing new appends nothing, so nothing is signed again.
    assert tail == [] or tail[-1][0] == "checkpoint_signed"
    assert [e for (e,) in tail].count("checkpoint_signed") <= 1


def test_rewrite_with_recomputed_hashes(signed, tmp_path):
    tw, keys, _ = signed
    pub = str(keys / "checkpoint.pub")
    export = tmp_path / "export.jsonl"
    export.write_text("".join(export_line(r) + "\n" for r in rows(tw.db_path)))
    assert key_body(keys) not in export.read_text()
    tw.run("verify", "--export", str(export), "--public-key", pub, check=0)
    first_cp = tw.events(kinds={"checkpoint_signed"})[0]["seq"]
    target = 3
    assert target < first_cp
    rewrite_and_recompute(tw.db_path, target, '{"forged":true}')
    plain = tw.run("verify", check=0)  # the documented limit of the plain chain
    assert "intact" in plain.stdout
    proc = tw.run("verify", "--public-key", pub, check=3)
    assert f"checkpoint seq {first_cp}" in proc.stderr and "rewritten" in proc.stderr
    report = json.loads(tw.run("report", "--public-key", pub, "--format", "json", check=0).stdout)
    assert report["integrity"]["ok"] is True  # the chain alone cannot tell
    assert report["integrity"]["checkpoint"]["verification"] == "invalid"
    diverged = tw.run("verify", "--export", str(export), check=3)
    assert f"the database's seq {target} differs from the exported copy" in diverged.stderr
    # The copy alone is still intact.
    tw.run("verify", "--export", str(export), "--export-only", "--public-key", pub, check=0)


def test_report_does_not_vouch_for_a_checkpoint_over_a_broken_chain(signed):
    """A row edited in place before the last checkpoint: the signature itself still verifies
    against the row's stored prev_hash, but the chain no longer reaches it."""
    tw, keys, _ = signed
    con = sqlite3.connect(tw.db_path)
    con.executescript("DROP TRIGGER IF EXISTS audit_events_no_update;")
    con.execute("UPDATE audit_events SET detail = '{\"edited\":true}' WHERE seq = 2")
    con.commit()
    con.close()
    report = json.loads(tw.run("report", "--public-key", str(keys / "checkpoint.pub"),
                               "--format", "json", check=0).stdout)
    assert report["integrity"]["ok"] is False
    assert report["integrity"]["checkpoint"]["verification"] == "invalid", report["integrity"]


def test_forged_checkpoint_with_another_key(signed, tmp_path):
    tw, keys, sim = signed
    other, _ = keygen(tmp_path, "other")
    # The attacker's own key signs the next checkpoint.
    text = tw.config_path.read_text().replace(str(keys / "checkpoint.key"),
                                              str(other / "checkpoint.key"))
    tw.config_path.write_text(text)
    sim.create("after the forgery", [])
    tw.poll(check=0)
    forged = tw.events(kinds={"checkpoint_signed"})[-1]["seq"]
    proc = tw.run("verify", "--public-key", str(keys / "checkpoint.pub"), check=3)
    assert f"checkpoint seq {forged}" in proc.stderr and "signed by another key" in proc.stderr
    # After a real rotation both public keys are given: accepted.
    tw.run("verify", "--public-key", str(keys / "checkpoint.pub"),
           "--public-key", str(other / "checkpoint.pub"), check=0)


def test_tampered_signature(signed):
    tw, keys, _ = signed
    cp = tw.events(kinds={"checkpoint_signed"})[-1]
    detail = dict(cp["detail"], host="elsewhere")
    rewrite_and_recompute(tw.db_path, cp["seq"],
                          json.dumps(detail, separators=(",", ":")))
    proc = tw.run("verify", "--public-key", str(keys / "checkpoint.pub"), check=3)
    assert "invalid signature" in proc.stderr


def test_without_checkpoints_nothing_is_proven(tmp_path, sim, tw_factory):
    keys, _ = keygen(tmp_path)
    sim.create("a", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.poll(check=0)
    proc = tw.run("verify", "--public-key", str(keys / "checkpoint.pub"), check=3)
    assert "no signed checkpoint: nothing is proven" in proc.stderr
    tw.run("verify", "--public-key", str(tmp_path / "missing.pub"), check=2)


def test_export_duplicates_and_gaps(signed, tmp_path):
    tw, keys, _ = signed
    lines = [export_line(r) for r in rows(tw.db_path)]
    dup = tmp_path / "dup.jsonl"
    dup.write_text("\n".join(lines[:6] + [" " + l for l in lines[3:]]) + "\n\n")
    proc = tw.run("verify", "--export", str(dup), check=0)
    assert "3 identical duplicate lines" in proc.stdout
    gap = tmp_path / "gap.jsonl"
    gap.write_text("\n".join(lines[:3] + lines[6:]) + "\n")
    proc = tw.run("verify", "--export", str(gap), check=3)
    assert "seq 4..6 missing" in proc.stderr
    mid = tmp_path / "mid.jsonl"
    mid.write_text("\n".join(lines[4:]) + "\n")
    assert "starts at seq 5" in tw.run("verify", "--export", str(mid), check=0).stdout


def test_daemon_signs_after_events_and_at_sigterm(tmp_path, sim, tw_factory):
    keys, _ = keygen(tmp_path)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "checkpoint.key").write_bytes((keys / "checkpoint.key").read_bytes())
    os.chmod(creds / "checkpoint.key", 0o600)
    for i in range(8):
        sim.create(f"token {i}", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=signing_config("checkpoint.key", events=5))
    tw.run("check-config", check=0, env={"CREDENTIALS_DIRECTORY": str(creds)})
    tw.start_daemon(env={"CREDENTIALS_DIRECTORY": str(creds)})
    twtest.wait_for(lambda: tw.db_path.exists() and
                    tw.events(kinds={"checkpoint_signed"}), what="a checkpoint after 5 events")
    assert tw.stop_daemon() == 0
    evs = tw.events()
    assert evs[-1]["event"] == "checkpoint_signed"
    assert evs[-2]["event"] == "daemon_stopped"  # the last checkpoint covers the stop
    tw.run("verify", "--public-key", str(keys / "checkpoint.pub"), check=0)
    body = key_body(keys)
    for f in [tw.db_path, tw.db_path.with_name("audit.db-wal"), tw.daemon_stderr]:
        if f.exists():
            assert body.encode() not in f.read_bytes(), f
    for fmt in ["html", "md", "csv", "json"]:
        out = tmp_path / f"report.{fmt}"
        tw.run("report", "--public-key", str(keys / "checkpoint.pub"), "-o", str(out), check=0)
        text = out.read_text()
        assert body not in text
        assert "verified with key" in text, fmt
    unchecked = json.loads(tw.run("report", "--format", "json", check=0).stdout)
    assert unchecked["integrity"]["checkpoint"]["verification"] == "not_checked"


def test_daemon_refuses_an_unreadable_key(tmp_path, sim, tw_factory):
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    os.chmod(bad, 0o600)
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=signing_config(bad))
    proc = tw.run("check-config", check=2)
    assert "audit.signing_key_file" in proc.stderr
    daemon = tw.start_daemon()
    assert daemon.wait(timeout=20) != 0
    assert "audit.signing_key_file" in tw.daemon_log()


def test_reload_rereads_the_key_or_rejects_a_bad_one(tmp_path, sim, tw_factory):
    first, _ = keygen(tmp_path, "first")
    second, _ = keygen(tmp_path, "second")
    sim.create("a", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=signing_config(first / "checkpoint.key", events=1))
    tw.start_daemon()

    def key_ids():
        return [e["detail"]["key_id"] for e in tw.events(kinds={"checkpoint_signed"})]

    twtest.wait_for(lambda: tw.db_path.exists() and key_ids(), what="a first checkpoint")
    first_id = key_ids()[0]
    # A key file that is not a key: the reload is rejected, the old key keeps signing.
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    os.chmod(bad, 0o600)
    text = tw.config_path.read_text()
    tw.config_path.write_text(text.replace(str(first / "checkpoint.key"), str(bad)))
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: tw.events(kinds={"config_rejected"}), what="config_rejected")
    assert "audit.signing_key_file" in tw.events(kinds={"config_rejected"})[-1]["detail"]["reason"]
    sim.create("b", [])
    twtest.wait_for(lambda: len(key_ids()) >= 2, what="a checkpoint after the rejected reload")
    assert set(key_ids()) == {first_id}
    # A rotated key: the reload applies it.
    tw.config_path.write_text(text.replace(str(first / "checkpoint.key"),
                                           str(second / "checkpoint.key")))
    tw.daemon.send_signal(signal.SIGHUP)
    twtest.wait_for(lambda: len(tw.events(kinds={"config_applied"})) >= 2, what="the reload")
    sim.create("c", [])
    twtest.wait_for(lambda: key_ids()[-1] != first_id, what="a checkpoint with the new key")
    assert tw.stop_daemon() == 0
    tw.run("verify", "--public-key", str(first / "checkpoint.pub"),
           "--public-key", str(second / "checkpoint.pub"), check=0)
    proc = tw.run("verify", "--public-key", str(first / "checkpoint.pub"), check=3)
    assert "signed by another key" in proc.stderr
