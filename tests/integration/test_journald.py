"""The journald export sink end to end: a real systemd-journald, started by the test in its own
journal namespace (`systemd-journald NAMESPACE`, as root; the host's journal is not touched),
receives every audit event of a daemon as one entry with the native fields; `journalctl --file`
reads them back by MESSAGE_ID and field, and the TOKENWARDEN_EXPORT fields form a file that
`verify --export` accepts. Skipped when journald cannot run here (not root, no systemd)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import twtest

JOURNALD = Path("/lib/systemd/systemd-journald")


def message_id(event: str) -> str:
    import hashlib
    h = list(hashlib.sha256(f"tokenwarden event {event}".encode()).hexdigest()[:32])
    h[12] = "4"
    h[16] = "89ab"["0123456789abcdef".index(h[16]) & 3]
    return "".join(h)


@pytest.fixture
def journal():
    if os.geteuid() != 0 or not JOURNALD.exists() or shutil.which("journalctl") is None:
        pytest.skip("systemd-journald needs root and systemd here")
    machine_id = Path("/etc/machine-id")
    if not machine_id.exists() or not machine_id.read_text().strip():
        pytest.skip("systemd-journald needs /etc/machine-id (absent in this container)")
    namespace = "tw" + uuid.uuid4().hex[:10]
    proc = subprocess.Popen([str(JOURNALD), namespace], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    socket = Path(f"/run/systemd/journal.{namespace}/socket")
    machine = machine_id.read_text().strip()
    dirs = [Path(f"/var/log/journal/{machine}.{namespace}"),
            Path(f"/run/log/journal/{machine}.{namespace}")]
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("systemd-journald could not be started in a namespace here")
            time.sleep(0.05)
        yield {"namespace": namespace, "socket": socket, "dirs": dirs, "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for d in [*dirs, socket.parent]:
            shutil.rmtree(d, ignore_errors=True)


def journal_files(journal) -> list[str]:
    return [str(p) for d in journal["dirs"] if d.exists() for p in d.glob("*.journal")]


def journal_entries(journal) -> list[dict]:
    """Every tokenwarden entry in the namespace's journal files, read with journalctl --file."""
    files = journal_files(journal)
    if not files:
        return []
    out = []
    for f in files:
        proc = subprocess.run(["journalctl", "--file", f, "-o", "json", "--all", "--no-pager",
                               "SYSLOG_IDENTIFIER=tokenwarden"], capture_output=True, text=True)
        out += [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return sorted(out, key=lambda e: int(e["TOKENWARDEN_SEQ"]))


def test_every_event_reaches_journald_with_native_fields(tmp_path, sim_factory, tw_factory, journal):
    sim = sim_factory()
    sim.create("etl writer (owner: data-eng)", [{"action": "write", "resource": "prod"}])
    sim.create("multi\nline \"quoted\" description", [])
    # An entry larger than a datagram: the sink passes it to journald in a sealed memfd.
    big = sim.create("x" * 300_000, [])
    sink = f"""
[[audit.export]]
name = "journal"
type = "journald"
socket = "{journal['socket']}"
"""
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=sink)
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 2, what="two polls")
    sim.create("late", [])
    twtest.wait_for(lambda: any(e["event"] == "token_created" for e in tw.events()),
                    what="token_created")
    assert tw.stop_daemon() == 0
    rows = tw.query("SELECT seq, event, cluster, token_id, detail, hash FROM audit_log ORDER BY seq")
    entries = twtest.wait_for(lambda: (lambda e: e if len(e) >= len(rows) else None)(journal_entries(journal)),
                              timeout=20, what="every event in the journal")
    by_seq = {int(e["TOKENWARDEN_SEQ"]): e for e in entries}
    assert sorted(by_seq) == [r[0] for r in rows], "every seq exactly as in the database"
    for seq, event, cluster, token_id, detail, hash_ in rows:
        e = by_seq[seq]
        assert e["TOKENWARDEN_EVENT"] == event and e["MESSAGE_ID"] == message_id(event)
        assert e.get("TOKENWARDEN_CLUSTER") == cluster and e.get("TOKENWARDEN_TOKEN_ID") == token_id
        assert e["TOKENWARDEN_DETAIL"] == detail and e["TOKENWARDEN_HASH"] == hash_
        assert json.loads(e["TOKENWARDEN_EXPORT"])["hash"] == hash_
    # journalctl selects by MESSAGE_ID, as an operator (or Promtail) would.
    files = journal_files(journal)
    created = subprocess.run(["journalctl", "--no-pager", "-o", "json",
                              *[a for f in files for a in ("--file", f)],
                              f"MESSAGE_ID={message_id('token_discovered')}"],
                             capture_output=True, text=True).stdout.splitlines()
    assert len(created) == sum(1 for r in rows if r[1] == "token_discovered") == 3
    big_entry = next(e for e in entries if e.get("TOKENWARDEN_TOKEN_ID") == big["id"])
    assert json.loads(big_entry["TOKENWARDEN_DETAIL"])["description"] == "x" * 300_000
    # The export lines form a copy `verify --export` checks against the database.
    copy = tmp_path / "journal-export.jsonl"
    copy.write_text("".join(e["TOKENWARDEN_EXPORT"] + "\n" for e in entries))
    proc = tw.run("verify", "--export", str(copy))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_documented_message_ids_are_the_ones_sent():
    """docs/audit-export.md lists every event kind's MESSAGE_ID; they are what the sink sends."""
    import re
    doc = (twtest.SOURCE_DIR / "docs" / "audit-export.md").read_text()
    table = dict(re.findall(r"^\| `([a-z_]+)` \| `([0-9a-f]{32})` \|$", doc, flags=re.M))
    kinds = re.findall(r'"([a-z_]+)"', (twtest.SOURCE_DIR / "core" / "audit_event.cpp").read_text()
                       .split("kNames{", 1)[1].split("};", 1)[0])
    assert sorted(table) == sorted(kinds)
    assert all(table[k] == message_id(k) for k in kinds)
