"""Helpers for the integration and contract suites: run the real tokenwarden binaries.

Everything is hermetic: every server binds 127.0.0.1 port 0, every file lives in a pytest
tmp_path, and nothing waits on the wall clock longer than a bounded poll for a condition.
"""
from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("TW_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN_DIR = Path(os.environ.get("TW_BIN_DIR", SOURCE_DIR / "build" / "debug" / "bin"))
MANAGEMENT_TOKEN = "mgmt-SECRET-7f3a9c1e5b2d4068a1c3e5f7091b2d4f"


def binary(name: str) -> str:
    path = BIN_DIR / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build the project first (TW_BIN_DIR={BIN_DIR})")
    return str(path)


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """A tokenwarden-sim process and its /_sim/ control API."""

    def __init__(self, workdir: Path, flavor="clustered", tls=None, token=MANAGEMENT_TOKEN,
                 extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.token_file = self.workdir / "sim-management.token"
        self.token_file.write_text(token + "\n")
        self.flavor = flavor
        self.account_id = "11111111-1111-4111-8111-111111111111"
        self.cluster_id = "33333333-3333-4333-8333-333333333333"
        args = [binary("tokenwarden-sim"), "--listen", "127.0.0.1:0", "--flavor", flavor,
                "--token-file", str(self.token_file)]
        if flavor == "dedicated":
            args += ["--account-id", self.account_id, "--cluster-id", self.cluster_id]
        if tls:
            args += ["--tls-cert", str(tls["cert"]), "--tls-key", str(tls["key"])]
        args += list(extra_args)
        self.stderr_path = self.workdir / "sim.stderr"
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"),
                                     text=True)
        line = self.proc.stdout.readline().strip()
        prefix = "tokenwarden-sim listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"tokenwarden-sim did not start: {line!r} {self.stderr_path.read_text()}")
        self.base_url = line[len(prefix):]  # e.g. http://127.0.0.1:PORT/api/v0
        self.port = int(self.base_url.split(":")[2].split("/")[0])
        self.control_url = f"http://127.0.0.1:{self.port}/_sim"
        self.tls = tls

    # -- control API -------------------------------------------------------------------------
    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        url = self.control_url + path
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
            url = url.replace("http://", "https://")
            req = urllib.request.Request(url.replace("127.0.0.1", "localhost"), data=data,
                                         method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def seed(self, tokens):
        return self.control("POST", "/tokens", tokens)

    def generate(self, n, seed=1):
        return self.control("POST", "/tokens", {"generate": n, "seed": seed})

    def tokens(self):
        return self.control("GET", "/tokens")

    def put_token(self, token_id, token):
        return self.control("PUT", f"/tokens/{token_id}", token)

    def remove_token(self, token_id):
        return self.control("DELETE", f"/tokens/{token_id}")

    def fault(self, **kwargs):
        return self.control("POST", "/faults", kwargs)

    def clear_faults(self):
        return self.control("DELETE", "/faults")

    def requests(self):
        return self.control("GET", "/requests")

    def set_clock(self, **kwargs):
        return self.control("POST", "/clock", kwargs)

    # -- management API (as a client would use it) -------------------------------------------
    def api(self, method: str, path: str, body=None, token=MANAGEMENT_TOKEN):
        prefix = ""
        if self.flavor == "dedicated":
            prefix = f"/accounts/{self.account_id}/clusters/{self.cluster_id}"
        url = self.base_url + prefix + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
            url = url.replace("127.0.0.1", "localhost")
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def create(self, description, permissions=(), expires_at=None):
        body = {"description": description, "permissions": list(permissions)}
        if expires_at:
            body["expiresAt"] = expires_at
        status, tok = self.api("POST", "/tokens", body)
        assert status == 200, (status, tok)
        return tok

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_test_ca(workdir: Path, san: str = "DNS:localhost,IP:127.0.0.1", cn: str = "localhost") -> dict:
    """A throw-away CA and a server certificate valid for `san` (openssl CLI)."""
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=tokenwarden test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={cn}")
    (d / "ext.cnf").write_text(f"subjectAltName={san}\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


class Tokenwarden:
    """Runs the tokenwarden binary against a config written into a temp dir."""

    def __init__(self, workdir: Path, clusters: list[str], extra: str = "", mode="enforce",
                 safety: str = "", alerting: str = "", listen: str = "", daemon_extra: str = "",
                 poll_interval: str = "1s"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "audit.db"
        self.config_path = self.workdir / "tokenwarden.toml"
        text = f"""
[daemon]
database = "{self.db_path}"
poll_interval = "{poll_interval}"
poll_jitter = "0s"
mode = "{mode}"
log_level = "debug"
{daemon_extra}
[http]
listen = "{listen}"

[safety]
max_vanished_percent = 50
""" + safety + "\n[alerting]\n" + alerting + "\n" + "\n".join(clusters) + "\n" + extra
        self.config_path.write_text(text)
        self.daemon = None
        self.daemon_stderr = self.workdir / "daemon.stderr"
        self.listen = listen

    def run(self, *args, check=None, timeout=120, env=None):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        proc = subprocess.run([binary("tokenwarden"), "--config", str(self.config_path), *args],
                              capture_output=True, text=True, timeout=timeout, env=full_env,
                              errors="replace")
        if check is not None:
            assert proc.returncode == check, (
                f"tokenwarden {' '.join(args)} exited {proc.returncode}, expected {check}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def poll(self, *args, check=None):
        return self.run("poll", *args, check=check)

    def json(self, *args):
        proc = self.run(*args, "--format", "json", check=0)
        return json.loads(proc.stdout)

    # -- database ------------------------------------------------------------------------------
    def query(self, sql, params=()):
        if not self.db_path.exists():
            raise FileNotFoundError(self.db_path)
        # The daemon creates the file a moment before its schema exists; retry briefly then.
        deadline = time.monotonic() + 5
        while True:
            con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
            try:
                return con.execute(sql, params).fetchall()
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e) or time.monotonic() > deadline:
                    raise
            finally:
                con.close()
            time.sleep(0.05)

    def events(self, cluster=None, kinds=None):
        rows = self.query("SELECT seq, cluster, token_id, event, detail FROM audit_log ORDER BY seq")
        out = []
        for seq, c, t, e, d in rows:
            if cluster is not None and c != cluster:
                continue
            if kinds is not None and e not in kinds:
                continue
            out.append({"seq": seq, "cluster": c, "token_id": t, "event": e, "detail": json.loads(d)})
        return out

    def token_events(self, cluster=None):
        kinds = {"token_discovered", "token_created", "token_updated", "token_revoked",
                 "token_expired", "token_removed"}
        return [(e["event"], e["token_id"]) for e in self.events(cluster, kinds)]

    def polls(self, cluster=None):
        if not self.db_path.exists():
            return []
        rows = self.query("SELECT id, cluster, outcome, token_count, error FROM polls ORDER BY id")
        return [dict(zip(("id", "cluster", "outcome", "token_count", "error"), r)) for r in rows
                if cluster is None or r[1] == cluster]

    # -- daemon --------------------------------------------------------------------------------
    def start_daemon(self, env=None):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.daemon = subprocess.Popen(
            [binary("tokenwarden"), "--config", str(self.config_path), "run"],
            stdout=subprocess.DEVNULL, stderr=open(self.daemon_stderr, "w"), env=full_env)
        return self.daemon

    def stop_daemon(self, sig=signal.SIGTERM, timeout=15):
        if self.daemon is None:
            return None
        self.daemon.send_signal(sig)
        rc = self.daemon.wait(timeout=timeout)
        self.daemon = None
        return rc

    def kill_daemon(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        self.daemon = None

    # -- HTTP endpoint ---------------------------------------------------------------------------
    def http_get(self, path, timeout=10, headers=None):
        """GET on the daemon's endpoint: (status, headers, body text)."""
        req = urllib.request.Request(f"http://{self.listen}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()
        except (urllib.error.URLError, ConnectionError) as e:  # not listening (yet)
            return 0, {}, str(e)

    def metrics(self):
        """The /metrics exposition parsed into {(name, frozenset(labels.items())): value}."""
        status, _, body = self.http_get("/metrics")
        assert status == 200, (status, body)
        return parse_metrics(body)

    def daemon_log(self):
        return self.daemon_stderr.read_text(errors="replace") if self.daemon_stderr.exists() else ""


def parse_metrics(text: str) -> dict:
    """Parses the Prometheus text format (as tokenwarden writes it) into
    {(name, frozenset of (label, value))): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, value = rest.rsplit("}", 1)
            labels = {}
            i = 0
            while i < len(labels_text):
                eq = labels_text.index("=", i)
                key = labels_text[i:eq].strip().lstrip(",")
                j = eq + 2  # past ="
                val = []
                while labels_text[j] != '"':
                    if labels_text[j] == "\\":
                        j += 1
                        val.append({"n": "\n"}.get(labels_text[j], labels_text[j]))
                    else:
                        val.append(labels_text[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
                if i < len(labels_text) and labels_text[i] == ",":
                    i += 1
        else:
            name, value = line.split(" ", 1)
            labels = {}
        out[(name, frozenset(labels.items()))] = float(value.strip().split(" ")[0])
    return out


def metric(metrics: dict, name: str, **labels) -> float | None:
    """One sample's value, or None if the series does not exist."""
    return metrics.get((name, frozenset(labels.items())))


def clustered_block(name: str, sim: Sim, token_file: Path, extra: str = "",
                    timeout: str = "3s") -> str:
    token_file.write_text(MANAGEMENT_TOKEN + "\n")
    token_file.chmod(0o600)  # as documented; 0644 gets a warning at start
    ca = f'ca_file = "{sim.tls["ca"]}"\n' if sim.tls else ""
    url = sim.base_url.replace("127.0.0.1", "localhost") if sim.tls else sim.base_url
    kind = sim.flavor
    ids = ""
    if kind == "dedicated":
        ids = f'account_id = "{sim.account_id}"\ncluster_id = "{sim.cluster_id}"\n'
    return f"""
[[clusters]]
name = "{name}"
type = "{kind}"
url = "{url}"
token_file = "{token_file}"
timeout = "{timeout}"
{ca}{ids}{extra}
"""


def influxctl_block(name: str, sim: Sim, workdir: Path, extra: str = "") -> str:
    cfg = Path(workdir) / f"influxctl-{name}.toml"
    host_port = sim.base_url.split("://")[1].split("/")[0]
    host, port = host_port.split(":")
    tls = 'ca = ""\ndisable = true' if not sim.tls else f'ca = "{sim.tls["ca"]}"'
    if sim.tls:
        host = "localhost"
    ids = ""
    if sim.flavor == "dedicated":
        ids = f'account_id = "{sim.account_id}"\ncluster_id = "{sim.cluster_id}"\n'
    cfg.write_text(f"""
[[profile]]
name = "default"
product = "{sim.flavor}"
host = "{host}"
port = "{port}"
mgmt_token = "{MANAGEMENT_TOKEN}"
{ids}
[profile.tls]
{tls}
""")
    return f"""
[[clusters]]
name = "{name}"
type = "influxctl"
influxctl_path = "{binary('tokenwarden-influxctl')}"
influxctl_config = "{cfg}"
timeout = "5s"
{extra}
"""


def soon(days: float) -> str:
    """An RFC 3339 time `days` from now (token expiries in tests)."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# Two enforcing policies the crash and high-availability tests use: tokens described "doomed…"
# without a near expiry are revoked, `*` write grants are restricted; no grace period.
REVOKE_AND_RESTRICT_POLICIES = """
[[policies]]
name = "doomed-must-expire"
kind = "max_lifetime"
max_lifetime = "30d"
action = "revoke"
grace_period = "0s"
scope = { description = "^doomed" }

[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
action = "restrict"
grace_period = "0s"
"""


class WebhookReceiver:
    """Receives the daemon's webhook alerts on a loopback port: `received` holds the JSON bodies."""

    def __init__(self):
        import http.server
        import threading
        self.received = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()

