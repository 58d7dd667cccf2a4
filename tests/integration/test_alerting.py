"""Alerting against a real Alertmanager (Debian's prometheus-alertmanager on loopback) and a
webhook receiver: the alert appears in Alertmanager's API while the violation is open and
disappears when it is resolved; every state change reaches the webhook."""
import json
import shutil
import subprocess
import urllib.request

import pytest
import twtest

AM = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(AM is None, reason="prometheus-alertmanager is not installed")


class Alertmanager:
    def __init__(self, workdir):
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / "alertmanager.yml"
        cfg.write_text("route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n")
        self.port = twtest.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "alertmanager.log"
        self.proc = subprocess.Popen(
            [AM, f"--config.file={cfg}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        twtest.wait_for(self.ready, timeout=30, what="alertmanager to start")

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


POLICIES = """
[[policies]]
name = "no-prod-write"
kind = "forbidden_grant"
actions = ["write"]
databases = ["prod*"]
severity = "critical"
action = "alert"

[[policies]]
name = "no-star"
kind = "all_databases_grant"
action = "revoke"
grace_period = "0s"
"""


def test_alert_fires_and_resolves(tmp_path, sim_factory, tw_factory):
    am = Alertmanager(tmp_path / "am")
    hook = twtest.WebhookReceiver()
    try:
        sim = sim_factory()
        writer = sim.create("dashboards <b>\"quoted\"</b>", [{"action": "write", "resource": "prod1"}])
        sim.create("ok", [{"action": "read", "resource": "prod1"}])
        tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=POLICIES,
                        safety="max_actions_per_cycle = 0\n",
                        alerting=f'alertmanager_url = "{am.url}"\nwebhook_url = "{hook.url}"\n')
        tw.start_daemon()

        def violation_alert():
            return [a for a in am.alerts() if a["labels"].get("alertname") == "TokenPolicyViolation"
                    and a["labels"].get("token_id") == writer["id"]]

        alerts = twtest.wait_for(violation_alert, timeout=30, what="the violation alert in Alertmanager")
        labels = alerts[0]["labels"]
        assert labels["cluster"] == "c1" and labels["policy"] == "no-prod-write" and labels["severity"] == "critical"
        assert "prod1" in alerts[0]["annotations"]["description"]
        assert '\\"quoted\\"' not in alerts[0]["annotations"]["description"]  # text, not re-escaped JSON

        # A revoke planned beyond the safety limits halts the cluster: that alerts too.
        star = sim.create("everything", [{"action": "write", "resource": "*"}])
        twtest.wait_for(lambda: [a for a in am.alerts() if a["labels"].get("alertname") == "TokenEnforcementHalted"],
                        timeout=30, what="the halt alert")
        assert not [r for r in sim.requests() if r["method"] == "DELETE"]

        # The token is fixed: the alert ends.
        sim.api("PATCH", f"/tokens/{writer['id']}", {"permissions": [{"action": "read", "resource": "prod1"}]})
        twtest.wait_for(lambda: not violation_alert(), timeout=30, what="the alert to be resolved")
        assert tw.stop_daemon() == 0

        events = [(m["event"], m["token_id"]) for m in hook.received]
        assert ("violation_opened", writer["id"]) in events
        assert ("violation_resolved", writer["id"]) in events
        opened = next(m for m in hook.received if m["event"] == "violation_opened" and m["token_id"] == writer["id"])
        assert opened["policy"] == "no-prod-write" and opened["detail"]["reason"]
        assert ("violation_opened", star["id"]) in events
        assert "token_id" in opened and "cluster" in opened
        log = tw.daemon_log()
        assert "alert delivery failed" not in log
    finally:
        hook.stop()
        am.stop()


def test_unreachable_alertmanager_never_blocks_polling(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.create("writer", [{"action": "write", "resource": "prod1"}])
    dead = f"http://127.0.0.1:{twtest.free_port()}"
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=POLICIES,
                    alerting=f'alertmanager_url = "{dead}"\n')
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 4, timeout=30, what="polls while alerts fail")
    assert tw.stop_daemon() == 0
    assert "alert delivery failed" in tw.daemon_log()
