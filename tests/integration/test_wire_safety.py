"""What servers and influxctl say is handled safely (issue 9, items 6 and 8): secrets never reach
the permanent record, response bodies stop at the limit, 1xx interim responses are skipped,
repeated JSON keys fail the poll, a TLS host-name mismatch says so, and idle keep-alive clients
cannot lock scrapers out of /metrics."""
import glob
import json
import socket
import subprocess
import threading
import time

import pytest

import twtest

SECRET = twtest.MANAGEMENT_TOKEN
LEAK_ENV = "TOKENWARDEN_INFLUXCTL_LEAK_TOKEN"


def assert_no_secret(text, where, secret=SECRET):
    """Neither the secret in any letter case nor its first half (what a cut would leave)."""
    low = text.lower()
    assert secret.lower() not in low, f"the management token is in {where}: {text[:2000]}"
    assert secret[: len(secret) // 2].lower() not in low, f"part of the token is in {where}"


def assert_db_has_no_secret(tw):
    for path in glob.glob(str(tw.db_path) + "*"):
        with open(path, "rb") as f:
            data = f.read().lower()
        assert SECRET.lower().encode() not in data, path
        assert SECRET[: len(SECRET) // 2].lower().encode() not in data, path


def poll_failed_errors(tw):
    return [e["detail"].get("error", "") for e in tw.events(kinds={"poll_failed"})]


def readyz_reason_with_error(tw):
    status, _, body = tw.http_get("/readyz")
    return body if status == 503 and "last error" in body else None


# --- secrets --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,expected", [
    ("bearer", "request failed: Authorization: Bearer [redacted] was rejected"),
    ("plain", "the management token [redacted] was rejected"),
    ("upper", "the management token [redacted] was rejected"),
])
def test_influxctl_printing_its_token_leaks_it_nowhere(tmp_path, sim_factory, tw_factory, mode, expected):
    sim = sim_factory()
    sim.create("one", [{"action": "read", "resource": "db"}])
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = tw_factory([twtest.influxctl_block("ctl", sim, tmp_path)], listen=listen)
    env = {LEAK_ENV: mode}
    outputs = {}
    p = tw.run("poll", env=env)
    assert p.returncode == 1, p.stderr
    outputs["poll summary"] = p.stdout + p.stderr
    assert expected in p.stdout + p.stderr
    pj = tw.run("poll", "--format", "json", env=env)
    outputs["poll --format json"] = pj.stdout + pj.stderr

    tw.start_daemon(env=env)
    readyz = twtest.wait_for(lambda: readyz_reason_with_error(tw), timeout=20, what="/readyz naming the error")
    outputs["/readyz"] = readyz
    assert expected in json.loads(readyz)["reasons"][0]
    outputs["/metrics"] = tw.http_get("/metrics")[2]
    assert tw.stop_daemon() == 0
    outputs["daemon log"] = tw.daemon_log()
    assert expected in outputs["daemon log"]
    outputs["history"] = tw.run("history", "--format", "json", check=0).stdout

    for where, text in outputs.items():
        assert_no_secret(text, where)
    errors = poll_failed_errors(tw)
    assert errors and all(expected in e for e in errors), errors
    assert all(expected in (row["error"] or "") for row in tw.polls())
    assert_db_has_no_secret(tw)
    assert tw.run("verify").returncode == 0


def test_rest_error_echoing_the_token_upper_cased_is_redacted(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.fault(kind="status", status=400, echo_auth="upper", method="GET")
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "mgmt.token")])
    p = tw.poll()
    assert p.returncode == 1
    expected = "answered 400 Bad Request (bad request (header was BEARER [redacted]))"
    assert expected in p.stdout + p.stderr
    assert_no_secret(p.stdout + p.stderr, "the poll output")
    assert [expected in e for e in poll_failed_errors(tw)] == [True]
    assert_db_has_no_secret(tw)


def test_description_quoting_the_token_is_stored_without_it(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    leaky = sim.create(f"curl -H 'Authorization: Bearer {SECRET}' (do not do this)")
    plain = sim.create("Bearer token for grafana")
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "mgmt.token")])
    p = tw.poll(check=0)
    assert_no_secret(p.stdout + p.stderr, "the poll output")
    descriptions = {t["token_id"]: t["description"] for t in tw.json("tokens")}
    assert descriptions[leaky["id"]] == "curl -H 'Authorization: Bearer [redacted]' (do not do this)"
    assert descriptions[plain["id"]] == "Bearer token for grafana"  # data, not a credential
    assert_db_has_no_secret(tw)


# --- a raw HTTP server for what tokenwarden-sim does not send ---------------------------------------

class RawServer:
    """Serves each connection with handler(conn) after reading the request head."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v0"
        self.sent = []  # bytes sent per connection
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            try:
                self.sent.append(self.handler(conn))
            except OSError:
                pass

    def close(self):
        self.sock.close()


def raw_cluster(tmp_path, server, extra=""):
    token_file = tmp_path / "mgmt.token"
    token_file.write_text(SECRET + "\n")
    block = f"""
[[clusters]]
name = "raw"
type = "clustered"
url = "{server.url}"
token_file = "{token_file}"
timeout = "20s"
{extra}
"""
    return block


def send_all(conn, data):
    conn.sendall(data)
    return len(data)


def json_response(body, status="200 OK"):
    data = body.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode() + data


def test_repeated_keys_in_a_token_fail_the_poll(tmp_path, tw_factory):
    body = '[{"id":"k1","id":"k2","description":"a","description":"b"}]'
    server = RawServer(lambda conn: send_all(conn, json_response(body)))
    try:
        tw = tw_factory([raw_cluster(tmp_path, server)])
        p = tw.poll()
        assert p.returncode == 1
        assert "appears twice in one object" in p.stdout + p.stderr
        assert [row["outcome"] for row in tw.polls()] == ["failed"]
        assert tw.token_events() == []
        assert 'the key "id" appears twice in one object at byte 12' in poll_failed_errors(tw)[0]
    finally:
        server.close()


def test_100_continue_before_the_response_is_skipped(tmp_path, tw_factory):
    body = ('[{"id":"55555555-5555-4555-8555-555555555555","description":"after continue",'
            '"permissions":[],"createdAt":"2024-01-01T00:00:00Z"}]')
    server = RawServer(lambda conn: send_all(conn, b"HTTP/1.1 100 Continue\r\n\r\n" + json_response(body)))
    try:
        tw = tw_factory([raw_cluster(tmp_path, server)])
        tw.poll(check=0)
        assert [row["outcome"] for row in tw.polls()] == ["ok"]
        assert tw.token_events() == [("token_discovered", "55555555-5555-4555-8555-555555555555")]
    finally:
        server.close()


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_chunked_body_beyond_the_limit_stops_at_the_limit(tmp_path, tw_factory):
    """200 MB of chunked body against max_response_mib = 16: the read stops at 16 MiB, the poll
    fails with a clear message and the daemon's peak memory stays far below the body size."""
    piece = b"x" * (1 << 20)
    chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"

    def stream(conn):
        sent = send_all(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
        try:
            for _ in range(200):
                sent += send_all(conn, chunk)
            sent += send_all(conn, b"0\r\n\r\n")
        except OSError:  # the client stopped reading and closed
            pass
        return sent

    server = RawServer(stream)
    try:
        tw = tw_factory([raw_cluster(tmp_path, server, extra="max_response_mib = 16")],
                        poll_interval="1h")
        daemon = tw.start_daemon()
        twtest.wait_for(lambda: tw.polls(), timeout=60, what="the first poll")
        peak_mib = vm_hwm_kib(daemon.pid) / 1024
        [row] = tw.polls()
        assert row["outcome"] == "failed"
        assert "the response body is larger than the limit of 16 MiB" in row["error"], row["error"]
        assert tw.stop_daemon() == 0
        # It stopped reading at the limit (plus what sits in socket buffers), not at 200 MB.
        twtest.wait_for(lambda: server.sent, what="the server to notice the close")
        assert server.sent[0] < 64 << 20, server.sent
        assert peak_mib < 100, f"peak RSS {peak_mib:.0f} MiB for a 16 MiB limit"
    finally:
        server.close()


# --- TLS --------------------------------------------------------------------------------------------

def make_ca_for(workdir, san):
    """A throw-away CA and a server certificate valid only for `san`."""
    return twtest.make_test_ca(workdir, san=san, cn="evil.example")


def test_tls_host_name_mismatch_says_so(tmp_path, sim_factory, tw_factory):
    tls = make_ca_for(tmp_path / "ca", "DNS:evil.example")
    sim = sim_factory(tls=tls)
    token_file = tmp_path / "mgmt.token"
    token_file.write_text(SECRET + "\n")
    blocks = []
    for name, host in (("by-name", "localhost"), ("by-ip", "127.0.0.1")):
        blocks.append(f"""
[[clusters]]
name = "{name}"
type = "clustered"
url = "https://{host}:{sim.port}/api/v0"
token_file = "{token_file}"
ca_file = "{tls['ca']}"
timeout = "5s"
""")
    tw = tw_factory(blocks)
    p = tw.poll()
    assert p.returncode == 1
    errors = {row["cluster"]: row["error"] for row in tw.polls()}
    assert ('TLS handshake failed: the host name "localhost" does not match the server\'s certificate'
            in errors["by-name"]), errors
    assert ('TLS handshake failed: the IP address "127.0.0.1" does not match the server\'s certificate'
            in errors["by-ip"]), errors
    assert "unspecified" not in json.dumps(errors)


# --- /metrics connection limits ----------------------------------------------------------------------

def test_idle_keep_alive_clients_do_not_lock_scrapers_out(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    listen = f"127.0.0.1:{twtest.free_port()}"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "mgmt.token")], listen=listen,
                    poll_interval="1h")
    tw.start_daemon()
    twtest.wait_for(lambda: tw.http_get("/healthz")[0] == 200, what="the endpoint")
    host, port = listen.split(":")
    idle = []
    try:
        for _ in range(70):  # more than the 64-connection cap, each idle after one request
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"ok\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            idle.append(s)
        started = time.monotonic()
        status, _, body = tw.http_get("/metrics", timeout=5)
        assert status == 200, body
        assert "tokenwarden_build_info" in body
        assert time.monotonic() - started < 2, "the scraper waited for idle clients"

        # Idle keep-alive connections are closed well within a scrape interval.
        first = idle[-1]
        first.settimeout(15)
        started = time.monotonic()
        try:
            assert first.recv(1) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 10
    finally:
        for s in idle:
            s.close()
    assert tw.stop_daemon() == 0
