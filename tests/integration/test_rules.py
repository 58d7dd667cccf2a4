"""The shipped Prometheus rules: valid (`promtool check rules`) and correct (`promtool test rules`).

promtool comes from `scripts/install-deps --test-tools` (extracted from Debian's prometheus
package); the tests skip, saying so, only where it is missing.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
import twtest
from twtest import SOURCE_DIR

PROM_DIR = SOURCE_DIR / "config" / "prometheus"
RULES = PROM_DIR / "tokenwarden.rules.yml"
RULES_TEST = PROM_DIR / "tokenwarden.rules.test.yml"
SCRAPE_EXAMPLE = PROM_DIR / "prometheus.example.yml"

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (run scripts/install-deps --test-tools)")

# SPEC §5 and the metrics later issues add: every metric name the rules may use, with its labels.
SPEC_METRICS = {
    "tokenwarden_build_info": {"version"},
    "tokenwarden_tokens": {"cluster", "status"},
    "tokenwarden_tokens_without_expiry": {"cluster"},
    "tokenwarden_tokens_expiring": {"cluster", "within", "team"},  # team: issue 14
    "tokenwarden_tokens_never_expiring": {"cluster", "team"},  # issue 14
    "tokenwarden_violations_open": {"cluster", "policy", "severity", "team"},
    "tokenwarden_violations_opened_total": {"cluster", "policy"},
    "tokenwarden_actions_total": {"cluster", "policy", "action", "result"},
    "tokenwarden_enforcement_halted": {"cluster"},
    "tokenwarden_polls_total": {"cluster", "outcome"},
    "tokenwarden_poll_duration_seconds": {"cluster"},
    "tokenwarden_last_successful_poll_timestamp_seconds": {"cluster"},
    "tokenwarden_audit_events_total": {"event"},
    "tokenwarden_exemptions_active": {"policy"},
    "tokenwarden_alerts_sent_total": {"receiver", "result"},
    "tokenwarden_config_last_reload_successful": set(),
    "tokenwarden_config_last_reload_success_timestamp_seconds": set(),
    "tokenwarden_management_token_expiry_timestamp_seconds": {"cluster"},  # issue 10
    # issue 12: the audit export
    "tokenwarden_export_delivered_seq": {"sink"},
    "tokenwarden_export_lag_events": {"sink"},
    "tokenwarden_export_lag_seconds": {"sink"},
    "tokenwarden_export_up": {"sink"},
    "tokenwarden_export_failures_total": {"sink"},
    "tokenwarden_enforcement_export_blocked": set(),
    # issue 13: high availability
    "tokenwarden_ha_leader": set(),
    "tokenwarden_ha_term": set(),
    "tokenwarden_ha_etcd_up": set(),
    "tokenwarden_ha_lease_remaining_seconds": set(),
    "tokenwarden_ha_etcd_requests_total": {"op", "result"},
    "tokenwarden_ha_fence_refusals_total": set(),
}
EXPECTED_ALERTS = {
    "TokenwardenDown", "TokenwardenAbsent", "TokenwardenPollsStale", "TokenwardenPollsFailing",
    "TokenwardenCriticalViolationsOpen", "TokenwardenEnforcementHalted",
    "TokenwardenActionsFailed", "TokenwardenConfigReloadFailed",
    "TokenwardenManagementTokenExpiring", "TokenwardenManagementTokenExpiresSoon",
    "TokenwardenExportLagging", "TokenwardenEnforcementBlockedByExport",
    "TokenwardenHaEtcdUnreachable", "TokenwardenHaNoLeader",
}


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_unit_tests_pass():
    proc = promtool("test", "rules", str(RULES_TEST))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_tested_firing_and_silent():
    text = RULES_TEST.read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.M))
    assert alerts == EXPECTED_ALERTS
    # Split the test file into alert_rule_test entries: (alertname, fires?).
    cases = re.findall(r"alertname: (\w+)\n\s*exp_alerts:( \[\])?", text)
    fired = {name for name, empty in cases if not empty}
    silent = {name for name, empty in cases if empty}
    assert alerts <= fired, f"never tested firing: {sorted(alerts - fired)}"
    assert alerts <= silent, f"never tested silent: {sorted(alerts - silent)}"


def test_alerts_have_severity_and_annotations():
    # promtool has no "list rules"; read the YAML with the few keys the file uses.
    blocks = re.split(r"^\s*- alert: ", RULES.read_text(), flags=re.M)[1:]
    assert len(blocks) == len(EXPECTED_ALERTS)
    for block in blocks:
        name = block.split("\n", 1)[0].strip()
        assert re.search(r"^\s*severity: (critical|warning|info)\s*$", block, re.M), name
        assert re.search(r"^\s*summary: ", block, re.M), name
        assert re.search(r"^\s*description: ", block, re.M), name


def test_rules_use_only_spec_metrics_and_labels():
    text = RULES.read_text()
    exprs = re.findall(r"^\s*expr: (.+)$", text, re.M)
    assert exprs
    for expr in exprs:
        for name in re.findall(r"\b(tokenwarden_[a-z_]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in SPEC_METRICS or name in SPEC_METRICS, f"{name} is not a SPEC §5 metric"
        for name, selector in re.findall(r"\b(tokenwarden_[a-z_]+)\{([^}]*)\}", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector)) - {"le", "job", "instance"}
            assert labels <= SPEC_METRICS[base], f"{name}: labels {labels - SPEC_METRICS[base]} not in SPEC"


def test_scrape_example_is_valid(tmp_path):
    # The example points at /etc/prometheus/tokenwarden.rules.yml; check it against the copy here.
    shutil.copy(RULES, tmp_path / "tokenwarden.rules.yml")
    config = SCRAPE_EXAMPLE.read_text().replace("/etc/prometheus/tokenwarden.rules.yml",
                                                "tokenwarden.rules.yml")
    assert "job_name: tokenwarden" in config
    (tmp_path / "prometheus.yml").write_text(config)
    proc = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- End to end: a real Prometheus scrapes a real daemon with the shipped rules ---------------

PROMETHEUS = shutil.which("prometheus")

DAEMON_CONFIG = """
[daemon]
database = "{db}"
poll_interval = "1s"
poll_jitter = "0s"
mode = "monitor"
log_level = "debug"

[http]
listen = "127.0.0.1:{port}"
{cluster}
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "alert"
"""

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [tokenwarden.rules.yml]
scrape_configs:
  - job_name: tokenwarden
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


def http_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (scripts/install-deps --test-tools)")
def test_prometheus_evaluates_the_rules_on_the_daemons_metrics(tmp_path):
    """The rules select the series the daemon really exports: Prometheus scrapes `tokenwarden run`
    (against tokenwarden-sim), the recording rules yield the cluster's series and a critical
    violation makes TokenwardenCriticalViolationsOpen pending."""
    sim = twtest.Sim(tmp_path / "sim")
    procs, logs = [], []
    try:
        sim.create("svc-ingest", [{"action": "write", "resource": "*"}])
        sim.create("grafana", [{"action": "read", "resource": "metrics"}])
        tw_port, prom_port = twtest.free_port(), twtest.free_port()
        config = tmp_path / "tokenwarden.toml"
        config.write_text(DAEMON_CONFIG.format(
            db=tmp_path / "audit.db", port=tw_port,
            cluster=twtest.clustered_block("e2e", sim, tmp_path / "mgmt.token")))
        daemon_log = open(tmp_path / "daemon.stderr", "w")
        logs.append(daemon_log)
        procs.append(subprocess.Popen([twtest.binary("tokenwarden"), "--config", str(config), "run"],
                                      stdout=subprocess.DEVNULL, stderr=daemon_log))
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        shutil.copy(RULES, prom_dir / "tokenwarden.rules.yml")
        (prom_dir / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(port=tw_port))
        prom_log = open(prom_dir / "prometheus.log", "w")
        logs.append(prom_log)
        procs.append(subprocess.Popen(
            [PROMETHEUS, "--config.file=prometheus.yml", f"--storage.tsdb.path={prom_dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            cwd=prom_dir, stdout=prom_log, stderr=subprocess.STDOUT))
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(expr):
            body = http_json(f"{api}/query?" + urllib.parse.urlencode({"query": expr}))
            return body["data"]["result"] if body else []

        def alerts():
            body = http_json(f"{api}/alerts")
            return body["data"]["alerts"] if body else []

        def diagnostics():
            return ((tmp_path / "daemon.stderr").read_text()[-3000:] + "\n"
                    + (prom_dir / "prometheus.log").read_text()[-3000:])

        try:
            twtest.wait_for(lambda: query('up{job="tokenwarden"} == 1'), timeout=30,
                            what="Prometheus scraping the daemon")
            age = twtest.wait_for(lambda: query('tokenwarden:last_successful_poll:age_seconds{cluster="e2e"}'),
                                  timeout=30, what="the poll-age recording rule")
            assert float(age[0]["value"][1]) < 60
            twtest.wait_for(lambda: query('tokenwarden:violations_open:sum_by_cluster_severity'
                                          '{cluster="e2e", severity="critical"} >= 1'),
                            timeout=30, what="the open-violations recording rule")
            twtest.wait_for(lambda: query('tokenwarden_polls_total{cluster="e2e", outcome="ok"} > 0'),
                            timeout=30, what="polls counted")
            pending = twtest.wait_for(
                lambda: [a for a in alerts() if a["labels"]["alertname"] == "TokenwardenCriticalViolationsOpen"],
                timeout=30, what="TokenwardenCriticalViolationsOpen pending")
            assert pending[0]["labels"]["cluster"] == "e2e"
            assert pending[0]["labels"]["policy"] == "no-star-write"
            assert pending[0]["state"] in ("pending", "firing")
            names = {a["labels"]["alertname"] for a in alerts()}
            assert not names & {"TokenwardenDown", "TokenwardenAbsent", "TokenwardenPollsStale",
                                "TokenwardenPollsFailing", "TokenwardenConfigReloadFailed"}, names
        except AssertionError as e:
            raise AssertionError(f"{e}\n{diagnostics()}") from None
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in logs:
            f.close()
        sim.stop()
