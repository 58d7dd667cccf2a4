"""The example queries of docs/database.md run against a database written by tokenwarden polling
tokenwarden-sim (with policies, violations, enforcement and churn), and the ones that compute a
figure agree with the commands that compute it another way: the write grants as of a date with
`tokens --at`, the time to remediate with `report --format json`."""
import collections
import re
import sqlite3
import statistics

import pytest
import twtest

POLICIES = """
[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "400d"
action = "revoke"
grace_period = "0s"
severity = "critical"

[[policies]]
name = "no-write-star"
kind = "all_databases_grant"
action = "alert"
severity = "warning"
"""
SAFETY = "max_actions_per_cycle = 1000\nmax_actions_percent = 100\n"


def doc_queries():
    text = (twtest.SOURCE_DIR / "docs" / "database.md").read_text()
    examples = text.split("## Example queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", examples, re.S)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbdocs")
    sim = twtest.Sim(tmp / "sim")
    try:
        tw = twtest.Tokenwarden(tmp / "tw", [twtest.clustered_block("prod-eu", sim, tmp / "token")],
                                extra=POLICIES, safety=SAFETY)
        sim.generate(120, seed=3)
        tw.poll(check=0)
        marks = []
        for i in range(4):
            sim.control("POST", "/churn", {"percent": 10, "seed": 10 + i})
            tw.poll(check=0)
            marks.append(tw.query("SELECT max(recorded_at) FROM audit_log")[0][0])
        yield tw, marks
    finally:
        sim.stop()


def test_every_example_query_runs(history):
    tw, _ = history
    queries = doc_queries()
    assert len(queries) >= 9
    token = tw.query("SELECT token_id FROM token_inventory LIMIT 1")[0][0]
    con = sqlite3.connect(f"file:{tw.db_path}?mode=ro", uri=True)
    try:
        for q in queries:
            params = (token,) if "?" in q else ()
            con.execute(q, params).fetchall()  # raises on any SQL error
    finally:
        con.close()


def test_write_grants_as_of_a_date_match_tokens_at(history):
    tw, marks = history
    query = next(q for q in doc_queries() if "asof(t)" in q)
    at = marks[1]
    rows = tw.query(query.replace("'2026-10-01T00:00:00.000Z'", "?"), (at,))
    expected = collections.Counter()
    for t in tw.json("tokens", "--at", at, "--status", "active"):
        for p in t["permissions"]:
            if p["action"] == "write":
                expected[(t["cluster"], p["resource"])] += 1
    assert expected, "the generated tokens include write grants"
    assert {(c, d): n for c, d, n in rows} == dict(expected)


def test_time_to_remediate_matches_the_report(history):
    tw, _ = history
    query = next(q for q in doc_queries() if "median_hours" in q)
    query = re.sub(r"AND resolved_at >= '[^']*' AND resolved_at < '[^']*'", "", query)
    rows = tw.query(query)
    assert rows, "churn fixed or revoked some violating tokens"
    report = tw.json("report", "--from", "2020-01-01", "--to", "now")
    ttr = {p["policy"]: p["time_to_remediate"] for p in report["compliance"]["policies"]}
    # Independently: the violations view, in Python.
    fixed = collections.defaultdict(list)
    import datetime

    def t(s):
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    for policy, opened, resolved, resolution in tw.query(
            "SELECT policy, opened_at, resolved_at, resolution FROM violations WHERE state = 'resolved'"):
        if resolution in ("compliant", "revoked", "restricted", "removed"):
            fixed[policy].append((t(resolved) - t(opened)).total_seconds())
    for policy, n, median_hours, max_hours in rows:
        assert n == len(fixed[policy]) == ttr[policy]["count"]
        assert median_hours == pytest.approx(statistics.median(fixed[policy]) / 3600, abs=0.01)
        assert ttr[policy]["median_seconds"] == pytest.approx(statistics.median(fixed[policy]), abs=0.01)
        assert max_hours == pytest.approx(max(fixed[policy]) / 3600, abs=0.01)
        assert ttr[policy]["max_seconds"] == pytest.approx(max(fixed[policy]), abs=0.01)
