"""A real etcd cluster on loopback for the high-availability tests (Debian's etcd-server 3.4).

EtcdCluster(workdir, size=3) starts `size` members with free loopback ports, a data dir each
under workdir, and short heartbeat/election timings so that elections take about a second. It
waits until every member answers /health. Members can be stopped (SIGTERM), killed (SIGKILL),
paused and started again (same data dir, --initial-cluster-state existing). Keys are read and
written through etcd's JSON gateway (POST /v3/kv/range, /v3/kv/put) with base64 keys, so the
tests need no etcd client library and no etcdctl.

The `etcd_cluster` fixture skips the test when /usr/bin/etcd is absent and tears every member
down (SIGKILL) at the end.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import twtest

ETCD = os.environ.get("TW_ETCD", "/usr/bin/etcd")
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
HEARTBEAT_MS = 100
ELECTION_MS = 1000


def b64(s: str | bytes) -> str:
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s: str) -> str:
    return base64.b64decode(s).decode(errors="replace")


def prefix_end(prefix: str) -> bytes:
    """The range_end that selects every key starting with prefix (etcdctl --prefix)."""
    b = bytearray(prefix.encode())
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"


def make_tls(workdir: Path) -> dict:
    """The test CA and server certificate (twtest.make_test_ca) plus a client certificate."""
    tls = twtest.make_test_ca(workdir)
    d = Path(workdir)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    # etcd's JSON gateway calls its own gRPC server presenting the server certificate as a client
    # certificate (with --client-cert-auth): the server certificate needs clientAuth too.
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=tokenwarden")
    (d / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf")
    (d / "client.key").chmod(0o600)
    tls.update(client_cert=d / "client.pem", client_key=d / "client.key")
    return tls


class EtcdError(RuntimeError):
    pass


class EtcdCluster:
    def __init__(self, workdir: Path, size: int = 3, heartbeat_ms: int = HEARTBEAT_MS,
                 election_ms: int = ELECTION_MS, start: bool = True, tls: bool = False):
        if not Path(ETCD).exists():
            raise FileNotFoundError(ETCD)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.names = [f"m{i}" for i in range(size)]
        self.client_ports = [twtest.free_port() for _ in range(size)]
        self.peer_ports = [twtest.free_port() for _ in range(size)]
        # tls: clients speak HTTPS and must present a certificate of the test CA (self.tls:
        # ca, cert, key of the server; client_cert, client_key); peers stay on plain HTTP.
        self.tls = make_tls(self.workdir / "tls") if tls else None
        scheme = "https" if tls else "http"
        self.endpoints = [f"{scheme}://127.0.0.1:{p}" for p in self.client_ports]
        self.peer_urls = [f"http://127.0.0.1:{p}" for p in self.peer_ports]
        self.initial_cluster = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls))
        self.procs: list[subprocess.Popen | None] = [None] * size
        self.started_once = [False] * size
        self.token = f"tw-test-{os.getpid()}-{self.client_ports[0]}"
        if start:
            for i in range(size):
                self.start(i, wait=False)
            self.wait_healthy()

    # -- members -----------------------------------------------------------------------------
    def data_dir(self, i: int) -> Path:
        return self.workdir / self.names[i]

    def log_path(self, i: int) -> Path:
        return self.workdir / f"{self.names[i]}.log"

    def start(self, i: int, wait: bool = True):
        assert self.procs[i] is None or self.procs[i].poll() is not None, f"member {i} is running"
        state = "existing" if self.started_once[i] else "new"
        args = [ETCD,
                "--name", self.names[i],
                "--data-dir", str(self.data_dir(i)),
                "--listen-client-urls", self.endpoints[i],
                "--advertise-client-urls", self.endpoints[i],
                "--listen-peer-urls", self.peer_urls[i],
                "--initial-advertise-peer-urls", self.peer_urls[i],
                "--initial-cluster", self.initial_cluster,
                "--initial-cluster-state", state,
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", str(self.heartbeat_ms),
                "--election-timeout", str(self.election_ms),
                "--enable-v2=false",
                "--logger", "zap", "--log-outputs", "stderr"]
        if self.tls:
            args += ["--cert-file", str(self.tls["cert"]), "--key-file", str(self.tls["key"]),
                     "--trusted-ca-file", str(self.tls["ca"]), "--client-cert-auth"]
        log = open(self.log_path(i), "a")
        log.write(f"\n=== start ({state}) {time.strftime('%H:%M:%S')} ===\n")
        log.flush()
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log.close()
        self.started_once[i] = True
        if wait:
            self.wait_healthy([i])

    def running(self, i: int) -> bool:
        return self.procs[i] is not None and self.procs[i].poll() is None

    def stop(self, i: int, timeout: float = 10):
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs[i] = None

    def kill(self, i: int):
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is None:
            p.kill()
            p.wait()
        self.procs[i] = None

    def pause(self, i: int):
        self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, i: int):
        self.procs[i].send_signal(signal.SIGCONT)

    def close(self):
        for i in range(self.size):
            self.kill(i)

    # -- health ------------------------------------------------------------------------------
    def healthy(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(self.endpoints[i] + "/health", timeout=2,
                                        context=self.ssl_context()) as r:
                return json.loads(r.read()).get("health") in ("true", True)
        except (OSError, ValueError):
            return False

    def wait_healthy(self, members=None, timeout: float = 30):
        members = range(self.size) if members is None else members
        for i in members:
            if self.procs[i] is not None and self.procs[i].poll() is not None:
                raise EtcdError(f"etcd member {i} exited {self.procs[i].returncode}:\n"
                                + self.log_path(i).read_text(errors="replace")[-3000:])
        twtest.wait_for(lambda: all(self.healthy(i) for i in members), timeout=timeout,
                        interval=0.1, what=f"etcd members {list(members)} to be healthy")

    def running_endpoints(self):
        return [e for i, e in enumerate(self.endpoints) if self.running(i)]

    # -- JSON gateway ------------------------------------------------------------------------
    def call(self, path: str, body: dict, timeout: float = 5, endpoint: str | None = None):
        """POST to the gateway of `endpoint` (default: the first running member); raises
        EtcdError on an error answer or when no answer arrives within timeout."""
        eps = [endpoint] if endpoint else self.running_endpoints()
        if not eps:
            raise EtcdError("no etcd member is running")
        req = urllib.request.Request(eps[0] + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as r:
                out = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise EtcdError(f"{path}: HTTP {e.code}: {e.read()[:500]!r}") from e
        except (OSError, ValueError) as e:  # timeouts, refused connections
            raise EtcdError(f"{path}: {e}") from e
        if "error" in out and "header" not in out:
            raise EtcdError(f"{path}: {out}")
        return out

    def ssl_context(self):
        if not self.tls:
            return None
        import ssl
        ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
        ctx.load_cert_chain(str(self.tls["client_cert"]), str(self.tls["client_key"]))
        return ctx

    def put(self, key: str, value: str, timeout: float = 5, endpoint: str | None = None):
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout, endpoint)

    def get_prefix(self, prefix: str, serializable: bool = False, timeout: float = 5,
                   endpoint: str | None = None) -> dict:
        """{key: {"value", "create_revision", "mod_revision", "version", "lease"}} of every key
        under prefix. serializable=True reads the member's local copy (works without quorum)."""
        body = {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        if serializable:
            body["serializable"] = True
        out = self.call("/v3/kv/range", body, timeout, endpoint)
        result = {}
        for kv in out.get("kvs", []):
            result[unb64(kv["key"])] = {
                "value": unb64(kv.get("value", "")),
                "create_revision": int(kv.get("create_revision", 0)),
                "mod_revision": int(kv.get("mod_revision", 0)),
                "version": int(kv.get("version", 0)),
                "lease": int(kv.get("lease", 0)),
            }
        return result

    def get(self, key: str, **kwargs):
        return self.get_prefix(key, **kwargs).get(key)

    def etcdctl(self, *args, timeout: float = 10):
        env = dict(os.environ, ETCDCTL_API="3")
        tls = []
        if self.tls:
            tls = ["--cacert", str(self.tls["ca"]), "--cert", str(self.tls["client_cert"]),
                   "--key", str(self.tls["client_key"])]
        return subprocess.run([ETCDCTL, "--endpoints", ",".join(self.endpoints), *tls, *args],
                              capture_output=True, text=True, timeout=timeout, env=env)


def started_cluster(workdir: Path, tls: bool = False):
    """Start a 3-member cluster, wait until it is healthy, yield it and kill every member at the end."""
    if not Path(ETCD).exists():
        pytest.skip(f"{ETCD} is missing (Debian package etcd-server)")
    c = EtcdCluster(workdir, size=3, start=False, tls=tls)
    try:
        for i in range(c.size):
            c.start(i, wait=False)
        c.wait_healthy()
        yield c
    finally:
        c.close()


@pytest.fixture
def etcd_cluster(tmp_path):
    """A started, healthy 3-member etcd cluster (EtcdCluster); every member is killed at the end."""
    yield from started_cluster(tmp_path / "etcd")


@pytest.fixture
def etcd_tls_cluster(tmp_path):
    """Like etcd_cluster, with HTTPS and client-certificate authentication towards clients."""
    yield from started_cluster(tmp_path / "etcd-tls", tls=True)
