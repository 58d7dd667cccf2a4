"""Contract of the `influxdb3` source against InfluxDB 3 Core/Enterprise's token API, as a JSON
schema written from shared/reference/real-behaviour.md §A6 (influxdb3-system-tokens.schema.json
beside this file; there is no published spec of the system.tokens rows to use with Prism):

1. the schema itself: valid, its examples conform, and what §A6 rules out is refused;
2. tokenwarden-sim's influxdb3 flavour: every body it answers matches the schema;
3. tokenwarden's client (tw-contract-probe influxdb3) reads every example and random
   schema-valid tables whole, and a real poll records them.
"""
import http.server
import json
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import twtest

SCHEMA = json.loads((Path(__file__).resolve().parent / "influxdb3-system-tokens.schema.json").read_text())
LIST = "/api/v3/query_sql?db=_internal&q=SELECT+*+FROM+system.tokens&format=json"


def validator(ref=None):
    schema = SCHEMA if ref is None else {"$ref": f"#/$defs/{ref}", "$defs": SCHEMA["$defs"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def conforms(body, ref=None):
    errors = sorted(validator(ref).iter_errors(body), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def refused(body, ref=None):
    return not validator(ref).is_valid(body)


def v3(sim, method, path, body=None, token=twtest.MANAGEMENT_TOKEN):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(sim.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type")


# ---- 1. the schema ------------------------------------------------------------------------------

def test_the_schema_is_valid_and_its_examples_conform():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert len(SCHEMA["examples"]) >= 4
    for example in SCHEMA["examples"]:
        conforms(example)


@pytest.mark.parametrize("row", [
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45Z", "permissions": "*:*:*"},      # a zone
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45", "expiry": None,
     "permissions": "*:*:*"},                                                                        # a null column
    {"token_id": "0", "name": "a", "created_at": "2025-04-18T14:02:45", "permissions": "*:*:*"},    # a string id
    {"token_id": -1, "name": "a", "created_at": "2025-04-18T14:02:45", "permissions": "*:*:*"},
    {"token_id": 0, "name": "a", "hash": "5c3b2e7f1a", "created_at": "2025-04-18T14:02:45", "permissions": "*:*:*"},
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45", "permissions": "db:*,a:read"},
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45", "permissions": "db:a"},
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45",
     "permissions": [{"action": "read", "resource": "a"}]},
    {"token_id": 0, "name": "a", "created_at": "2025-04-18T14:02:45", "permissions": "*:*:*", "revoked_at": "x"},
    {"token_id": 0, "created_at": "2025-04-18T14:02:45", "permissions": "*:*:*"},
])
def test_the_schema_refuses_what_section_a6_rules_out(row):
    assert refused([row]), row


# ---- 2. the simulator ---------------------------------------------------------------------------

def seeded_sim(sim_factory, name="sim", extra_args=()):
    sim = sim_factory(name, flavor="influxdb3", extra_args=extra_args)
    status, body, _ = v3(sim, "POST", "/api/v3/configure/token/admin")
    assert status == 201, body
    conforms(json.loads(body), "createdToken")
    sim.generate(200, seed=8)
    for payload in ({"token_name": "probe", "permissions": [
                        {"resource_type": "system", "resource_names": ["health", "metrics"], "actions": ["read"]}]},
                    {"token_name": "grafana eu", "expiry_secs": 86400, "permissions": [
                        {"resource_type": "db", "resource_names": ["a", "b"], "actions": ["read"]},
                        {"resource_type": "db", "resource_names": ["*"], "actions": ["write"]}]}):
        status, body, _ = v3(sim, "POST", "/api/v3/enterprise/configure/token", payload)
        assert status == 201, body
        conforms(json.loads(body), "createdToken")
    status, body, _ = v3(sim, "POST", "/api/v3/configure/token/named_admin", {"token_name": "ops", "expiry_secs": 60})
    assert status == 201, body
    conforms(json.loads(body), "createdToken")
    return sim


def test_simulator_tables_match_the_schema(sim_factory):
    empty = sim_factory("empty", flavor="influxdb3")
    status, body, ctype = v3(empty, "GET", LIST)
    assert (status, body) == (200, "[]") and ctype == "application/json"
    sim = seeded_sim(sim_factory)
    status, body, _ = v3(sim, "GET", LIST)
    assert status == 200
    rows = json.loads(body)
    assert len(rows) == 204
    conforms(rows)
    assert any("expiry" in r for r in rows) and any("expiry" not in r for r in rows)
    assert {r["permissions"] for r in rows} >= {"*:*:*", "system:health,metrics:read"}
    status, body, _ = v3(sim, "GET", LIST.replace("tokens&", "tokens+WHERE+token_id+%3D+7&"))
    assert status == 200 and [r["token_id"] for r in json.loads(body)] == [7]
    conforms(json.loads(body))


def test_simulator_without_auth_matches_the_schema(sim_factory):
    sim = seeded_sim(sim_factory, extra_args=["--without-auth"])
    status, body, _ = v3(sim, "GET", LIST, token="whatever")
    rows = json.loads(body)
    assert status == 200 and rows and all("hash" not in r for r in rows)
    conforms(rows)


def test_simulator_error_bodies(sim_factory):
    sim = seeded_sim(sim_factory)
    status, body, ctype = v3(sim, "GET", LIST, token="wrong")
    assert status == 401 and ctype == "application/json"
    conforms(json.loads(body), "jsonError")
    status, body, _ = v3(sim, "GET", "/api/v3/query_sql?db=_internal&q=SELECT+1")
    assert status == 400
    conforms(json.loads(body), "jsonError")
    status, body, ctype = v3(sim, "DELETE", "/api/v3/configure/token?token_name=nobody")
    assert (status, body) == (404, "the requested resource was not found: nobody") and ctype.startswith("text/plain")
    status, body, _ = v3(sim, "DELETE", "/api/v3/configure/token?token_name=_admin")
    assert (status, body) == (405, "cannot delete operator token")
    status, body, _ = v3(sim, "DELETE", "/api/v3/configure/token?token_name=probe")
    assert (status, body) == (200, "")


# ---- 3. tokenwarden's client against schema-valid bodies ---------------------------------------

class Canned:
    """Serves one fixed body on every GET (a stand-in server for schema examples)."""

    def __init__(self):
        self.body = "[]"
        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                data = canned.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned():
    c = Canned()
    yield c
    c.stop()


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "admin.token"
    p.write_text(twtest.MANAGEMENT_TOKEN + "\n")
    return p


def probe_list(url, token_file):
    import subprocess
    proc = subprocess.run([twtest.binary("tw-contract-probe"), "influxdb3", url, str(token_file), "-", "-", "list"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def random_table(rng, n):
    """Random rows that the schema accepts, every optional column sometimes present."""
    def time():
        base = f"20{rng.randint(20, 30)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T" \
               f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        return base + rng.choice(["", f".{rng.randint(1, 999):03d}"])

    def part():
        kind = rng.choice(["db", "db", "system"])
        names = ["*"] if rng.random() < 0.2 else rng.sample(["a", "b", "metrics", "logs-eu", "x_1"], rng.randint(1, 3))
        if kind == "system":
            return "system:" + ",".join(rng.sample(["health", "metrics", "ping"], rng.randint(1, 2))) + ":read"
        actions = "*" if rng.random() < 0.2 else ",".join(rng.sample(["read", "write"], rng.randint(1, 2)))
        return f"db:{','.join(names)}:{actions}"

    rows = []
    for i, token_id in enumerate(sorted(rng.sample(range(0, 10_000), n))):
        row = {"token_id": token_id, "name": f"token {i} \u00e9", "created_at": time(),
               "permissions": "*:*:*" if rng.random() < 0.2 else ";".join(part() for _ in range(rng.randint(1, 3)))}
        for key, value in (("hash", "%09x" % rng.getrandbits(36)), ("description", "d" * rng.randint(0, 5)),
                           ("created_by_token_id", 0), ("updated_at", time()), ("updated_by_token_id", 1),
                           ("expiry", time())):
            if rng.random() < 0.5:
                row[key] = value
        rows.append(row)
    return rows


def test_client_reads_every_schema_example(canned, token_file):
    for example in SCHEMA["examples"]:
        canned.body = json.dumps(example)
        listed = probe_list(canned.url, token_file)
        assert listed["ok"], listed
        assert [t["id"] for t in listed["tokens"]] == [str(r["token_id"]) for r in example]
        for token, row in zip(listed["tokens"], example):
            assert token["revoked_at"] is None
            assert (token["expires_at"] is None) == ("expiry" not in row)
            assert token["description"].startswith(row["name"])


def test_client_reads_random_schema_valid_tables(canned, token_file):
    rng = random.Random(20261206)
    for n in (1, 5, 40):
        for _ in range(5):
            rows = random_table(rng, n)
            conforms(rows)
            canned.body = json.dumps(rows)
            listed = probe_list(canned.url, token_file)
            assert listed["ok"], (listed, rows)
            assert len(listed["tokens"]) == n


def test_a_poll_records_a_schema_example(canned, token_file, tw_factory):
    canned.body = json.dumps(SCHEMA["examples"][3])
    tw = tw_factory([f"""
[[clusters]]
name = "contract"
type = "influxdb3"
url = "{canned.url}"
token_file = "{token_file}"
timeout = "20s"
"""])
    tw.poll(check=0)
    assert sorted(t for _, t in tw.token_events()) == ["0", "12", "13", "3", "7"]
    tw.run("verify", check=0)
