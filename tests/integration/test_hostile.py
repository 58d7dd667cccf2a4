"""Hostile token descriptions travel through polling, storage and every output format inert,
and the audit chain can be re-verified independently exactly as docs/database.md describes."""
import csv
import hashlib
import io
import json
import sqlite3
import subprocess

import twtest

HOSTILE = [
    "<script>alert('x')</script>",
    'quote " and \\ backslash, comma',
    "ansi \x1b[31mred\x1b[0m and bell \x07",
    "two\nlines\r\nand a tab\t",
    "bidi \u202etxt.exe",
    "</script><!--",
    "unicode caf\u00e9 \U0001F600 \u2028 sep",
    "=HYPERLINK(\"http://evil\")",
    "x" * 100_000,
]


def test_hostile_descriptions_are_inert(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    ids = [sim.create(d, [{"action": "read", "resource": "db"}])["id"] for d in HOSTILE]
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    poll = tw.poll(check=0)

    # The database holds them exactly; every detail is valid JSON.
    stored = {row[0]: row[1] for row in tw.query("SELECT token_id, description FROM token_inventory")}
    for token_id, d in zip(ids, HOSTILE):
        assert stored[token_id] == d
    for (detail,) in tw.query("SELECT detail FROM audit_log"):
        json.loads(detail)

    # Table output: no raw control characters, one line per token.
    table = tw.run("tokens", check=0).stdout
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table
    assert len(table.splitlines()) == 1 + len(HOSTILE)
    history = tw.run("history", check=0).stdout
    assert "\x1b" not in history and len(history.splitlines()) == 1 + len(HOSTILE)

    # JSON and CSV carry the exact values (CSV guards the formula).
    as_json = {t["token_id"]: t["description"] for t in tw.json("tokens")}
    for token_id, d in zip(ids, HOSTILE):
        assert as_json[token_id] == d
    raw = subprocess.run([twtest.binary("tokenwarden"), "--config", str(tw.config_path), "tokens",
                          "--format", "csv"], capture_output=True, check=True).stdout.decode()
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    by_id = {r["token_id"]: r["description"] for r in rows}
    assert by_id[ids[7]] == "'" + HOSTILE[7]
    assert by_id[ids[3]] == HOSTILE[3]

    # Logs stay one event per line.
    for line in poll.stderr.splitlines():
        assert "\x1b" not in line


def test_chain_recomputes_as_documented(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    for d in HOSTILE:
        sim.create(d, [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.poll(check=0)
    sim.create("later </ token", [])
    tw.poll(check=0)
    # The exact snippet from docs/database.md.
    db = sqlite3.connect(f"file:{tw.db_path}?mode=ro", uri=True)
    prev = "0" * 64
    n = 0
    for seq, at, cluster, token, event, detail, prev_hash, h in db.execute(
            "SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash FROM audit_log ORDER BY seq"):
        canonical = json.dumps([seq, at, cluster, token, event, detail], separators=(",", ":"),
                               ensure_ascii=False).replace("</", "<\\/")
        assert prev_hash == prev and hashlib.sha256((prev + canonical).encode()).hexdigest() == h, seq
        prev = h
        n += 1
    assert n == len(HOSTILE) + 1
    head = json.loads(tw.run("verify", "--format", "json", check=0).stdout)
    assert head["head_hash"] == prev


def test_json_logs_are_valid_json_lines(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.create(HOSTILE[3], [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    text = tw.config_path.read_text().replace('log_level = "debug"', 'log_level = "debug"\nlog_format = "json"')
    tw.config_path.write_text(text)
    sim.fault(kind="status", status=500, count=1)
    p1 = tw.poll()
    p2 = tw.poll(check=0)
    lines = [l for l in (p1.stderr + p2.stderr).splitlines() if l.strip()]
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(obj)
    assert any(json.loads(l).get("cluster") == "c1" and "poll failed" in json.loads(l)["msg"] for l in lines)
