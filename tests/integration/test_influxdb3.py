"""The `influxdb3` source (InfluxDB 3 Core/Enterprise) end to end: the real tokenwarden binary
against `tokenwarden-sim --flavor influxdb3` — discovery through the system.tokens table,
creation and deletion seen by later polls, confirmed removals, a policy violation enforced by
deleting the token (checked in the simulator's request log), the operator token, faults, and
check-config refusing `restrict` for such a cluster."""
import json
import re
import sqlite3
import subprocess
import urllib.error
import urllib.request

import twtest

NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"

NO_GLOBAL_WRITE = """
[[policies]]
name = "no-global-write"
kind = "all_databases_grant"
actions = ["write"]
action = "revoke"
grace_period = "0s"
severity = "critical"
"""

EXEMPT_OPERATOR = """
[[exemptions]]
policy = "no-global-write"
token_id = "0"
cluster = "core"
reason = "the admin token tokenwarden polls with"
expires = "{expires}"
"""


def in_days(days):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def v3(sim, method, path, body=None, token=twtest.MANAGEMENT_TOKEN):
    """A call to the simulated InfluxDB 3 API: (status, body text)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(sim.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def operator_token(sim):
    status, body = v3(sim, "POST", "/api/v3/configure/token/admin")
    assert status == 201, (status, body)
    return json.loads(body)


def resource_token(sim, name, resource_type, names, actions, expiry_secs=None):
    status, body = v3(sim, "POST", "/api/v3/enterprise/configure/token", {
        "token_name": name, "expiry_secs": expiry_secs,
        "permissions": [{"resource_type": resource_type, "resource_names": names, "actions": actions}]})
    assert status == 201, (status, body)
    return json.loads(body)


def named_admin(sim, name):
    status, body = v3(sim, "POST", "/api/v3/configure/token/named_admin", {"token_name": name})
    assert status == 201, (status, body)
    return json.loads(body)


def make(tmp_path, sim_factory, tw_factory, extra="", sim_args=()):
    sim = sim_factory(flavor="influxdb3", extra_args=sim_args)
    block = twtest.clustered_block("core", sim, tmp_path / "admin.token")
    assert 'type = "influxdb3"' in block and f'url = "{sim.base_url}"' in block
    tw = tw_factory([block], extra=extra, safety=NO_LIMITS)
    return sim, tw


def of(tw, token_id, event=None):
    return [e for e in tw.events() if e["token_id"] == str(token_id) and (event is None or e["event"] == event)]


def deletes(sim):
    return [r for r in sim.requests() if r["method"] == "DELETE"]


def test_discover_create_delete_confirm(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    operator_token(sim)
    sim.generate(20, seed=5)
    tw.poll(check=0)
    discovered = [e for e in tw.events(kinds={"token_discovered"})]
    assert sorted(int(e["token_id"]) for e in discovered) == list(range(21))
    admin = of(tw, 0, "token_discovered")[0]["detail"]
    assert admin["description"] == "_admin"
    assert admin["permissions"] == [{"action": "admin", "resource": "*"}, {"action": "read", "resource": "*"},
                                    {"action": "write", "resource": "*"}]
    assert admin["expires_at"] is None and admin["revoked_at"] is None
    # The table was read with exactly the documented query.
    lists = [r for r in sim.requests() if r["path"] == "/api/v3/query_sql"]
    assert lists and lists[0]["method"] == "GET" and lists[0]["auth"] == "ok"
    assert lists[0]["query"] == "db=_internal&q=SELECT%20%2A%20FROM%20system.tokens&format=json"

    created = resource_token(sim, "grafana eu", "db", ["metrics", "logs"], ["read"], expiry_secs=86400)
    tw.poll(check=0)
    ev = of(tw, created["id"], "token_created")
    assert len(ev) == 1, tw.events()
    assert ev[0]["detail"]["description"] == "grafana eu"
    assert ev[0]["detail"]["permissions"] == [{"action": "read", "resource": "logs"},
                                              {"action": "read", "resource": "metrics"}]
    assert ev[0]["detail"]["expires_at"] is not None

    # Someone else deletes it: the next poll confirms the removal with a direct read.
    status, _ = v3(sim, "DELETE", "/api/v3/configure/token?token_name=grafana%20eu")
    assert status == 200
    sim.control("DELETE", "/requests")
    tw.poll(check=0)
    removed = of(tw, created["id"], "token_removed")
    assert len(removed) == 1 and removed[0]["detail"]["confirmed_by"] == "direct_read", removed
    reads = [r["query"] for r in sim.requests() if r["path"] == "/api/v3/query_sql"]
    assert any(f"WHERE%20token_id%20%3D%20{created['id']}" in q for q in reads), reads
    inventory = {t["token_id"]: t for t in tw.json("tokens", "--cluster", "core")}
    assert inventory[str(created["id"])]["status"] == "removed"
    assert inventory["0"]["status"] == "active"
    tw.run("verify", check=0)


def test_policy_violation_is_enforced_by_deleting_the_token(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory,
                   extra=NO_GLOBAL_WRITE + EXEMPT_OPERATOR.format(expires=in_days(30)))
    operator_token(sim)
    reader = resource_token(sim, "grafana", "db", ["metrics"], ["read"])
    health = resource_token(sim, "probe", "system", ["health"], ["read"])
    writer = resource_token(sim, "wide writer", "db", ["*"], ["write"])
    bot = named_admin(sim, "deploy-bot")
    tw.poll(check=0)

    dels = deletes(sim)
    names = sorted(r["query"] for r in dels)
    assert names == ["token_name=deploy-bot", "token_name=wide%20writer"], dels
    for victim in (writer, bot):
        ok = of(tw, victim["id"], "action_succeeded")
        assert len(ok) == 1 and ok[0]["detail"]["outcome"] == "deleted", of(tw, victim["id"])
    # The operator token is exempt; the others comply (a system grant is no database grant).
    assert of(tw, 0, "exemption_applied")
    for keep in (0, reader["id"], health["id"]):
        assert not of(tw, keep, "action_planned"), of(tw, keep)
    remaining = {r["name"] for r in json.loads(v3(sim, "GET",
                 "/api/v3/query_sql?db=_internal&q=SELECT+*+FROM+system.tokens")[1])}
    assert remaining == {"_admin", "grafana", "probe"}

    # The next poll records them removed and resolves the violations; nothing is sent again.
    tw.poll(check=0)
    for victim in (writer, bot):
        assert len(of(tw, victim["id"], "token_removed")) == 1
        resolved = of(tw, victim["id"], "violation_resolved")
        assert resolved and resolved[0]["detail"]["resolution"] == "removed", of(tw, victim["id"])
    assert len(deletes(sim)) == 2
    tw.run("verify", check=0)


def test_the_operator_token_cannot_be_deleted_and_the_error_says_why(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, extra=NO_GLOBAL_WRITE)
    operator_token(sim)
    tw.poll()
    failed = of(tw, 0, "action_failed")
    assert len(failed) == 1, of(tw, 0)
    error = failed[0]["detail"]["error"]
    assert "answered 405" in error and "cannot delete operator token" in error and "exempt it" in error
    assert twtest.MANAGEMENT_TOKEN not in json.dumps(tw.events())
    assert [r["query"] for r in deletes(sim)] == ["token_name=_admin"]


def test_check_config_refuses_restrict_for_an_influxdb3_cluster(tmp_path, sim_factory, tw_factory):
    restrict = NO_GLOBAL_WRITE.replace('action = "revoke"', 'action = "restrict"')
    sim, tw = make(tmp_path, sim_factory, tw_factory, extra=restrict)
    proc = tw.run("check-config", check=2)
    assert ('policies[0].action: policy "no-global-write" restricts tokens, but cluster "core" '
            "(clusters[0], type influxdb3) cannot change a token's permissions") in proc.stderr, proc.stderr
    tw.run("poll", check=2)
    assert sim.requests() == []


def test_faults_fail_the_poll_and_record_nothing(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    operator_token(sim)
    sim.generate(5, seed=2)
    for fault in ({"kind": "status", "status": 500}, {"kind": "malformed"}, {"kind": "truncate"}):
        sim.fault(path="/api/v3/query_sql", count=1, **fault)
        tw.poll()
        assert tw.polls()[-1]["outcome"] == "failed", (fault, tw.polls())
    assert tw.token_events() == []
    tw.poll(check=0)
    assert len(tw.token_events()) == 6
    assert all(e["event"] == "token_discovered" for e in tw.events(kinds={"token_discovered"}))


def test_an_acknowledged_delete_that_did_not_happen_is_retried(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory,
                   extra=NO_GLOBAL_WRITE + EXEMPT_OPERATOR.format(expires=in_days(30)))
    operator_token(sim)
    bot = named_admin(sim, "deploy-bot")
    sim.fault(kind="ignore", method="DELETE", count=1)
    tw.poll()
    failed = of(tw, bot["id"], "action_failed")
    assert len(failed) == 1 and "still active" in failed[0]["detail"]["error"], of(tw, bot["id"])


def test_a_server_without_auth_has_no_hash_column(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, sim_args=["--without-auth"])
    operator_token(sim)
    sim.generate(3, seed=1)
    rows = json.loads(v3(sim, "GET", "/api/v3/query_sql?db=_internal&q=SELECT+*+FROM+system.tokens",
                         token="anything")[1])
    assert rows and all("hash" not in r for r in rows)
    tw.poll(check=0)
    assert len(tw.token_events()) == 4


def test_demo_runs_a_third_influxdb3_cluster(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.run([twtest.binary("tokenwarden"), "demo", "--once", "--cycles", "2", "--interval", "1s",
                           "--listen", "", "--dir", str(demo_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "core-local    influxdb3" in proc.stdout, proc.stdout
    cycle_lines = [line for line in proc.stdout.splitlines()
                   if re.match(r"  core-local +(ok|failed|suspect) +\d+ tokens", line)]
    assert len(cycle_lines) == 2 and all(" ok " in line for line in cycle_lines), proc.stdout
    con = sqlite3.connect(demo_dir / "audit.db")
    try:
        outcomes = [json.loads(d)["outcome"] for (d,) in con.execute(
            "SELECT detail FROM audit_log WHERE cluster = 'core-local' AND event = 'action_succeeded'")]
        exempt = con.execute("SELECT count(*) FROM audit_log WHERE cluster = 'core-local' AND token_id = '0' "
                             "AND event = 'exemption_applied'").fetchone()[0]
    finally:
        con.close()
    assert outcomes and set(outcomes) == {"deleted"}, outcomes
    assert exempt >= 1


def test_the_example_config_and_policies_hold_an_influxdb3_cluster(tmp_path):
    example = (twtest.SOURCE_DIR / "config" / "tokenwarden.toml").read_text()
    assert 'type = "influxdb3"' in example
    config = tmp_path / "tokenwarden.toml"
    config.write_text(example.replace("/var/lib/tokenwarden/audit.db", str(tmp_path / "audit.db")))

    def run(*args):
        return subprocess.run([twtest.binary("tokenwarden"), "--config", str(config), *args],
                              capture_output=True, text=True, timeout=60)

    checked = run("check-config")
    assert checked.returncode == 0, checked.stderr
    # The example policies validate against it (no restrict policy covers core-edge); only the
    # missing database stops the preview.
    simulated = run("simulate", "--policies", str(twtest.SOURCE_DIR / "config" / "policies.toml"))
    assert "policies[" not in simulated.stderr and "does not exist" in simulated.stderr, simulated.stderr
