"""Backups and read-only copies of the audit database, databases that are not tokenwarden's, and
the argument rules every command shares — the real `tokenwarden` binary against a database
recorded by a real poll of `tokenwarden-sim`.

Read-only media: the tests run as root, which ignores directory permissions, so a read-only
directory is a read-only bind mount (or, where mounting is not allowed, an immutable directory).
"""
import contextlib
import json
import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile

import pytest
import twtest

POLICY = """
[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "30d"
action = "revoke"
grace_period = "0s"
severity = "critical"
require_approval = true
"""
SAFETY = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"


@pytest.fixture
def recorded(tmp_path, sim_factory, tw_factory):
    """A database with token events, a violation and an action awaiting approval."""
    sim = sim_factory()
    for i in range(6):
        sim.create(f"svc {i}", [{"action": "read", "resource": f"db{i}"}], expires_at="2099-01-01T00:00:00Z")
    sim.create("no expiry", [{"action": "write", "resource": "*"}])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=POLICY, safety=SAFETY)
    tw.poll(check=0)
    sim.create("late", [], expires_at="2099-01-01T00:00:00Z")
    tw.poll(check=0)
    tw.sim = sim
    return tw


def wal_copy(tw, dest):
    """A copy as `sqlite3 .backup` makes it: the live database's WAL mode is kept."""
    subprocess.run(["sqlite3", str(tw.db_path), f".backup '{dest}'"], check=True, capture_output=True)
    with open(dest, "rb") as f:
        header = f.read(20)
    assert header[18:20] == b"\x02\x02", "expected a WAL-mode copy"


@contextlib.contextmanager
def read_only_dir(tmp_path, fill):
    """A directory whose files `fill(path)` wrote, then made read-only (even for root)."""
    src = tmp_path / "ro-src"
    src.mkdir()
    fill(src)
    mnt = tmp_path / "ro"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True).returncode == 0
    if mounted:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True)
        if remount.returncode != 0:
            subprocess.run(["umount", str(mnt)], check=True)
            mounted = False
    immutable = False
    if not mounted:
        mnt.rmdir()
        mnt = src
        immutable = subprocess.run(["chattr", "+i", str(mnt)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a directory read-only here (no bind mount, no chattr +i)")
    try:
        probe = mnt / "probe"
        with pytest.raises(OSError):
            probe.write_text("x")
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=True)
        if immutable:
            subprocess.run(["chattr", "-i", str(mnt)], check=True)


def run(tw, *args, check=None, cwd=None):
    """tokenwarden without the test's configuration (as on a machine holding only backups)."""
    proc = subprocess.run([twtest.binary("tokenwarden"), "--config", "/nonexistent/tokenwarden.toml", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd, errors="replace")
    if check is not None:
        assert proc.returncode == check, (f"tokenwarden {' '.join(args)} exited {proc.returncode}, expected "
                                          f"{check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def read_commands(db, out_dir):
    return [
        ("verify", "--db", str(db), "--format", "json"),
        ("tokens", "--db", str(db), "--format", "json"),
        ("tokens", "--db", str(db), "--at", "now", "--format", "json"),
        ("history", "--db", str(db), "--format", "json"),
        ("violations", "--db", str(db), "--format", "json"),
        ("report", "--db", str(db), "--format", "json", "-o", str(out_dir / "r.json")),
    ]


# --------------------------------------------------------------------------------------------
# Read-only copies.
def test_the_failure_is_real_sqlite_cannot_read_a_wal_copy_on_read_only_media(recorded, tmp_path):
    # What tokenwarden used to do (a plain read-only open) fails here: the check that the test
    # set-up reproduces the problem the fallback solves.
    with read_only_dir(tmp_path, lambda d: wal_copy(recorded, d / "b.db")) as ro:
        proc = subprocess.run(["sqlite3", "-readonly", str(ro / "b.db"), "SELECT count(*) FROM audit_log"],
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "unable to open database file" in proc.stderr


def test_every_read_command_reads_a_wal_copy_on_read_only_media(recorded, tmp_path):
    expected = [run(recorded, *args, check=0).stdout for args in read_commands(recorded.db_path, tmp_path)]
    out = tmp_path / "out"
    out.mkdir()
    with read_only_dir(tmp_path, lambda d: wal_copy(recorded, d / "b.db")) as ro:
        for i, args in enumerate(read_commands(ro / "b.db", out)):
            proc = run(recorded, *args, check=0)
            assert proc.stderr == "", proc.stderr
            if args[0] == "report":
                rep = json.loads((out / "r.json").read_text())
                assert rep["integrity"]["ok"] is True and rep["integrity"]["head_seq"] > 0
                continue
            got = proc.stdout.replace(str(ro / "b.db"), str(recorded.db_path))
            assert got == expected[i], args
        assert sorted(p.name for p in ro.iterdir()) == ["b.db"], "nothing may appear next to the copy"


def test_a_wal_copy_in_a_directory_the_user_cannot_write(recorded):
    # The adversarial review's second case: the file is the user's, its directory is root's.
    nobody = pwd.getpwnam("nobody")
    d = tempfile.mkdtemp(prefix="tw-nobody-")
    try:
        os.chmod(d, 0o755)
        db = os.path.join(d, "ro.db")
        wal_copy(recorded, db)
        os.chown(db, nobody.pw_uid, nobody.pw_gid)
        os.chmod(db, 0o600)
        as_nobody = dict(user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], capture_output=True, text=True)
        proc = subprocess.run(["sqlite3", "-readonly", db, "SELECT count(*) FROM audit_log"], **as_nobody)
        assert proc.returncode != 0 and "readonly database" in proc.stderr, "the set-up does not reproduce"
        for cmd in ("verify", "tokens", "history"):
            proc = subprocess.run([twtest.binary("tokenwarden"), "--config", "/nonexistent", cmd, "--db", db],
                                  timeout=60, **as_nobody)
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert os.listdir(d) == ["ro.db"]
        os.chown(db, 0, 0)  # now not even readable by nobody: the reason is given
        proc = subprocess.run([twtest.binary("tokenwarden"), "--config", "/nonexistent", "verify", "--db", db],
                              timeout=60, **as_nobody)
        assert proc.returncode == 1 and f'cannot read database "{db}": Permission denied' in proc.stderr
    finally:
        shutil.rmtree(d)


def test_a_wal_copy_with_unapplied_commits_is_refused_with_the_reason(recorded, tmp_path):
    def fill(d):
        # A copy taken with cp while a writer had commits in the -wal file only.
        con = sqlite3.connect(recorded.db_path)
        con.execute("PRAGMA wal_autocheckpoint = 0")
        con.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
        con.commit()
        shutil.copy(recorded.db_path, d / "b.db")
        shutil.copy(str(recorded.db_path) + "-wal", d / "b.db-wal")
        con.close()
        assert (d / "b.db-wal").stat().st_size > 0

    with read_only_dir(tmp_path, fill) as ro:
        proc = run(recorded, "verify", "--db", str(ro / "b.db"), check=1)
        assert str(ro / "b.db") in proc.stderr and "-wal" in proc.stderr and "tokenwarden backup" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_copy_with_an_interrupted_transaction_is_refused_not_read_half_written(recorded, tmp_path):
    good = tmp_path / "good.db"
    recorded.run("backup", str(good), check=0)

    def fill(d):
        shutil.copy(good, d / "b.db")
        (d / "b.db-journal").write_bytes(os.urandom(4096))  # a hot journal SQLite would roll back

    with read_only_dir(tmp_path, fill) as ro:
        proc = run(recorded, "tokens", "--db", str(ro / "b.db"), check=1)
        assert str(ro / "b.db") in proc.stderr and "-journal" in proc.stderr and proc.stdout == ""


# --------------------------------------------------------------------------------------------
# tokenwarden backup.
SUMMARY = re.compile(r"^(?P<file>\S+): backup of (?P<src>\S+): (?P<events>\d+) events, last seq (?P<seq>\d+), "
                     r"hash (?P<hash>[0-9a-f]{64}), (?P<bytes>\d+) bytes, verified\n$")


def test_backup_of_a_running_daemon_is_consistent_verified_0600_and_readable_read_only(recorded, tmp_path):
    recorded.sim.generate(300)
    recorded.start_daemon()
    try:
        twtest.wait_for(lambda: len(recorded.polls()) >= 4, what="the daemon polling")
        target = tmp_path / "backups" / "audit.db"
        target.parent.mkdir()
        old_umask = os.umask(0o022)  # the file is 0600 whatever the umask
        try:
            proc = recorded.run("backup", str(target), check=0)
        finally:
            os.umask(old_umask)
        m = SUMMARY.match(proc.stdout)
        assert m, proc.stdout
        assert m["file"] == str(target) and m["src"] == str(recorded.db_path)
        assert int(m["events"]) == int(m["seq"]) > 300 and int(m["bytes"]) == target.stat().st_size
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert sorted(p.name for p in target.parent.iterdir()) == ["audit.db"]
        # The daemon kept polling meanwhile (the backup did not stop it).
        polls = len(recorded.polls())
        twtest.wait_for(lambda: len(recorded.polls()) > polls, what="a poll after the backup")
    finally:
        assert recorded.stop_daemon() == 0
    with open(target, "rb") as f:
        assert f.read(20)[18:20] == b"\x01\x01", "the backup must be in rollback-journal mode"
    con = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    head = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    con.close()
    assert head == (int(m["seq"]), m["hash"])
    # The backup's head is a row of the live chain, unchanged.
    assert recorded.query("SELECT hash FROM audit_log WHERE seq = ?", (head[0],))[0][0] == head[1]
    out = tmp_path / "out"
    out.mkdir()
    with read_only_dir(tmp_path, lambda d: shutil.copy(target, d / "b.db")) as ro:
        for args in read_commands(ro / "b.db", out):
            run(recorded, *args, check=0)
        assert sorted(p.name for p in ro.iterdir()) == ["b.db"]


def test_backup_never_replaces_a_file_without_force(recorded, tmp_path):
    target = tmp_path / "b.db"
    target.write_text("precious")
    proc = recorded.run("backup", str(target), check=2)
    assert proc.stdout == "" and str(target) in proc.stderr and "--force" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b.db")) == ["b.db"]
    proc = recorded.run("backup", str(target), "--force", check=0)
    assert SUMMARY.match(proc.stdout) and stat.S_IMODE(target.stat().st_mode) == 0o600
    run(recorded, "verify", "--db", str(target), check=0)


def test_backup_errors(recorded, tmp_path):
    proc = recorded.run("backup", str(tmp_path / "missing" / "b.db"), check=1)
    assert str(tmp_path / "missing") in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = recorded.run("backup", str(tmp_path), check=2)
    assert "is a directory" in proc.stderr
    proc = recorded.run("backup", str(recorded.db_path), "--force", check=2)
    assert "the database itself" in proc.stderr
    proc = run(recorded, "backup", "--db", str(tmp_path / "nope.db"), str(tmp_path / "b.db"), check=1)
    assert "does not exist" in proc.stderr and not (tmp_path / "b.db").exists()
    recorded.run("backup", check=2)  # FILE is required


def test_backup_of_a_tampered_database_is_kept_and_exits_3(recorded, tmp_path):
    subprocess.run(["sqlite3", str(recorded.db_path),
                    "DROP TRIGGER audit_events_no_update; "
                    "UPDATE audit_events SET detail = '{}' WHERE seq = 3"], check=True)
    target = tmp_path / "b.db"
    proc = recorded.run("backup", str(target), check=3)
    assert "BROKEN" in proc.stderr and "seq 3" in proc.stderr and target.exists()
    run(recorded, "verify", "--db", str(target), check=3)


def test_backup_is_in_the_help():
    proc = subprocess.run([twtest.binary("tokenwarden"), "--help"], capture_output=True, text=True)
    assert re.search(r"^\s+backup\s", proc.stdout, re.M)
    proc = subprocess.run([twtest.binary("tokenwarden"), "backup", "--help"], capture_output=True, text=True)
    assert "tokenwarden backup /var/backups/tokenwarden/" in proc.stdout and "--force" in proc.stdout


# --------------------------------------------------------------------------------------------
# Databases that are not tokenwarden's, or damaged.
def test_another_applications_database_is_refused_not_adopted(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.create("a", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    con = sqlite3.connect(tw.db_path)
    con.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers(name) VALUES ('acme')")
    con.commit()
    con.close()
    os.chmod(tw.db_path, 0o644)
    before = tw.db_path.read_bytes()
    for args, rc in ((("poll",), 1), (("tokens",), 1), (("verify",), 1), (("approve", "1"), 1)):
        proc = tw.run(*args, check=rc)
        assert str(tw.db_path) in proc.stderr and "not a tokenwarden audit database" in proc.stderr, args
    assert tw.db_path.read_bytes() == before
    assert stat.S_IMODE(tw.db_path.stat().st_mode) == 0o644, "the other application's file mode was changed"
    assert not os.path.exists(str(tw.db_path) + "-wal")


def test_a_damaged_database_is_named_in_the_error(recorded, tmp_path):
    copy = tmp_path / "damaged.db"
    recorded.run("backup", str(copy), check=0)
    con = sqlite3.connect(copy)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'audit_events'").fetchone()[0]
    con.close()
    with open(copy, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\x5a" * page_size)
    for cmd in ("verify", "history"):
        proc = run(recorded, cmd, "--db", str(copy), check=1)
        assert str(copy) in proc.stderr and "malformed" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = run(recorded, "backup", "--db", str(copy), str(tmp_path / "b2.db"), check=1)
    assert str(copy) in proc.stderr and not (tmp_path / "b2.db").exists()


# --------------------------------------------------------------------------------------------
# Argument rules: a usage error is exit 2 with the option named, before anything is read.
@pytest.mark.parametrize("args,needle", [
    (("history", "--limit", "-1"), "--limit"),
    (("history", "--limit", "abc"), "--limit"),
    (("report", "--limit", "-1"), "--limit"),
    (("tokens", "--at", ""), "--at"),
    (("history", "--since", ""), "--since"),
    (("history", "--event", ""), "--event"),
    (("history", "--event", ","), "--event"),
    (("history", "--since", "2027-01-01", "--until", "2026-01-01"), "--until"),
    (("report", "--from", ""), "--from"),
    (("report", "-o", ""), "--output"),
    (("tokens", "--db", ""), "--db"),
    (("poll", "--cluster", ""), "--cluster"),
    (("simulate", "--policies", ""), "--policies"),
    (("approve", "-1"), "action ids"),
    (("approve", "abc"), "action ids"),
    (("approve", "1", "--by", ""), "--by"),
    (("approve", "1", "--by", "\x1b[31mmallory\x1b[0m\nFAKE"), "--by"),
    (("approve", "1", "--by", "bidi \u202eevil"), "--by"),
    (("approve", "--cluster", "nope", "--all"), "nope"),
])
def test_usage_errors_exit_2(recorded, args, needle):
    before = recorded.query("SELECT count(*) FROM audit_log")[0][0]
    proc = recorded.run(*args, check=2)
    assert proc.stdout == ""
    assert needle in proc.stderr.splitlines()[0], proc.stderr
    assert "\x1b" not in proc.stderr and "0000000000" not in proc.stderr
    assert recorded.query("SELECT count(*) FROM audit_log")[0][0] == before


def test_limit_zero_means_all_and_n_means_the_last_n(recorded):
    everything = recorded.json("history")
    assert recorded.json("history", "--limit", "0") == everything
    assert recorded.json("history", "--limit", "2") == everything[-2:]


def test_history_since_equal_until_is_allowed(recorded):
    first = recorded.json("history")[0]["recorded_at"]
    rows = recorded.json("history", "--since", first, "--until", first)
    assert rows and all(r["recorded_at"] == first for r in rows)


def test_approve_by_is_recorded_and_known_clusters_are_accepted(recorded):
    proc = recorded.run("approve", "--cluster", "c1", "--all", "--by", "Alice Ängström (DOMAIN\\alice)", check=0)
    assert "as Alice Ängström (DOMAIN\\alice)" in proc.stdout
    ev = [e for e in recorded.events() if e["event"] == "action_approved"]
    assert ev and ev[-1]["detail"]["by"] == "Alice Ängström (DOMAIN\\alice)"
    # With --db and no configuration, a cluster recorded in the database is known.
    proc = run(recorded, "approve", "--db", str(recorded.db_path), "--cluster", "c1", "--all", check=0)
    assert "nothing awaits approval on cluster c1" in proc.stdout
    run(recorded, "approve", "--db", str(recorded.db_path), "--cluster", "c2", "--all", check=2)


def test_report_output_dash_is_stdout(recorded, tmp_path):
    proc = subprocess.run([twtest.binary("tokenwarden"), "--config", str(recorded.config_path), "report",
                           "-o", "-", "--format", "json"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["integrity"]["ok"] is True
    assert not (tmp_path / "-").exists()
    proc = subprocess.run([twtest.binary("tokenwarden"), "--config", str(recorded.config_path), "report",
                           "-o", "-"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("#")  # Markdown, the default
    assert not (tmp_path / "-").exists()
