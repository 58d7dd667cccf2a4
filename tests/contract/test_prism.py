"""Contract tests against the published OpenAPI specs, with Prism (@stoplight/prism-cli).

1. tokenwarden's REST client against `prism mock` serving each spec, with static examples and
   with `--dynamic` (random spec-valid bodies); Prism also validates every request we send.
2. The simulator checked against the specs: the client talks to tokenwarden-sim through
   `prism proxy --errors`, which fails any request or response that violates the spec.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import twtest

SPECS = {
    "clustered": Path(twtest.SOURCE_DIR) / "tests" / "data" / "openapi" / "clustered-management-openapi.yml",
    "dedicated": Path(twtest.SOURCE_DIR) / "tests" / "data" / "openapi" / "cloud-dedicated-management-openapi.yml",
}
ACCOUNT = "11111111-1111-4111-8111-111111111111"
CLUSTER = "33333333-3333-4333-8333-333333333333"

pytestmark = pytest.mark.skipif(shutil.which("prism") is None, reason="prism is not installed")


class Prism:
    def __init__(self, workdir, *args):
        self.port = twtest.free_port()
        self.log = Path(workdir) / f"prism-{self.port}.log"
        self.proc = subprocess.Popen(["prism", *args, "-h", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        twtest.wait_for(lambda: "Prism is listening" in self.log.read_text() or self.proc.poll() is not None,
                        timeout=60, what="prism to start")
        assert self.proc.poll() is None, self.log.read_text()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "mgmt.token"
    p.write_text(twtest.MANAGEMENT_TOKEN + "\n")
    return p


def probe(flavor, url, token_file, *op):
    proc = subprocess.run([twtest.binary("tw-contract-probe"), flavor, url, str(token_file), ACCOUNT,
                           CLUSTER, *op], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def cluster_block(flavor, url, token_file):
    ids = f'account_id = "{ACCOUNT}"\ncluster_id = "{CLUSTER}"\n' if flavor == "dedicated" else ""
    return f"""
[[clusters]]
name = "contract"
type = "{flavor}"
url = "{url}"
token_file = "{token_file}"
timeout = "20s"
{ids}"""


@pytest.mark.parametrize("flavor", ["clustered", "dedicated"])
def test_client_against_static_mock(flavor, tmp_path, token_file, tw_factory):
    prism = Prism(tmp_path, "mock", str(SPECS[flavor]))
    try:
        listed = probe(flavor, prism.url, token_file, "list")
        assert listed["ok"], listed
        assert [t["id"] for t in listed["tokens"]] == [
            "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666",
            "77777777-7777-4777-8777-777777777777"]
        assert listed["tokens"][2]["permissions"] == []
        assert listed["tokens"][0]["created_at"] == "2023-12-21T17:32:28.000Z"
        revoked = probe(flavor, prism.url, token_file, "revoke", "55555555-5555-4555-8555-555555555555")
        assert revoked == {"ok": True, "outcome": "revoked"}
        # Prism answers PATCH with a fixed example: the request is valid (no 422), and the client
        # notices that the permissions it got back are not the ones it asked for.
        restricted = probe(flavor, prism.url, token_file, "restrict",
                           "55555555-5555-4555-8555-555555555555", "read:DatabaseOne")
        assert restricted["ok"] is False and "answered 200 but the token now has" in restricted["error"]
        # The real binary records the example inventory.
        tw = tw_factory([cluster_block(flavor, prism.url, token_file)])
        tw.poll(check=0)
        assert len(tw.token_events()) == 3
        log = prism.log.read_text()
        assert "violation" not in log.lower(), log
    finally:
        prism.stop()


@pytest.mark.parametrize("flavor", ["clustered", "dedicated"])
def test_client_against_dynamic_mock(flavor, tmp_path, token_file, tw_factory):
    prism = Prism(tmp_path, "mock", "--dynamic", str(SPECS[flavor]))
    try:
        tw = tw_factory([cluster_block(flavor, prism.url, token_file)])
        for _ in range(5):
            proc = tw.poll()
            # Random spec-valid bodies must always be readable; Prism may generate duplicate
            # ids only by chance, which the client then rejects as a whole.
            assert tw.polls()[-1]["outcome"] in ("ok", "suspect"), proc.stderr
        tw.run("verify", check=0)
        assert "violation" not in prism.log.read_text().lower()
    finally:
        prism.stop()


def test_client_sends_bearer_and_accept(tmp_path, token_file):
    prism = Prism(tmp_path, "mock", str(SPECS["clustered"]))
    try:
        bad = tmp_path / "empty.token"
        bad.write_text("\n")
        result = probe("clustered", prism.url, bad, "list")
        assert result["ok"] is False and "is empty" in result["error"]
        ok = probe("clustered", prism.url, token_file, "list")
        assert ok["ok"]
        assert "Request contains an accept header: application/json" in prism.log.read_text()
    finally:
        prism.stop()


@pytest.mark.parametrize("flavor", ["clustered", "dedicated"])
def test_simulator_through_validating_proxy(flavor, tmp_path, token_file, sim_factory, tw_factory):
    sim = sim_factory(flavor=flavor)
    sim.generate(50, seed=3)
    prism = Prism(tmp_path, "proxy", "--errors", str(SPECS[flavor]), sim.base_url)
    try:
        tw = tw_factory([cluster_block(flavor, prism.url, token_file)])
        tw.poll(check=0)
        assert len(tw.token_events()) == 50

        prefix = f"/accounts/{ACCOUNT}/clusters/{CLUSTER}" if flavor == "dedicated" else ""
        import urllib.request
        headers = {"Authorization": f"Bearer {twtest.MANAGEMENT_TOKEN}", "Accept": "application/json",
                   "Content-Type": "application/json"}

        def call(method, path, body=None):
            req = urllib.request.Request(prism.url + prefix + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    raw = r.read()
                    return r.status, json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"null")

        status, created = call("POST", "/tokens", {"description": "via proxy",
                                                   "permissions": [{"action": "read", "resource": "db1"}],
                                                   "expiresAt": "2030-01-01T00:00:00Z"})
        assert status == 200 and len(created["accessToken"]) >= 64, created
        status, got = call("GET", f"/tokens/{created['id']}")
        assert status == 200 and got["description"] == "via proxy"
        status, patched = call("PATCH", f"/tokens/{created['id']}", {"permissions": []})
        assert status == 200 and patched["permissions"] == []
        r = probe(flavor, prism.url, token_file, "restrict", created["id"], "write:db2")
        assert r == {"ok": True}, r
        r = probe(flavor, prism.url, token_file, "revoke", created["id"])
        assert r == {"ok": True, "outcome": "revoked"}
        # Errors are spec-shaped too: 404 on revoking it again, 401 without a token.
        r = probe(flavor, prism.url, token_file, "revoke", created["id"])
        assert r == {"ok": True, "outcome": "already_gone"}
        status, body = call("GET", "/tokens/99999999-9999-4999-8999-999999999999")
        assert status == 404 and body["code"] == 404 and isinstance(body["message"], str)
        tw.poll(check=0)
        # Created and revoked between two polls: one token_created event, in its revoked state.
        created_events = [e for e in tw.events(kinds={"token_created"}) if e["token_id"] == created["id"]]
        assert len(created_events) == 1
        assert created_events[0]["detail"]["status"] == "revoked"
        assert created_events[0]["detail"]["permissions"] == [{"action": "write", "resource": "db2"}]
        log = prism.log.read_text()
        assert "violation" not in log.lower(), log
    finally:
        prism.stop()
