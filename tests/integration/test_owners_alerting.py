"""Alerts addressed to owners (issue 14) against a real Alertmanager (Debian's
prometheus-alertmanager on loopback) and tokenwarden-sim: a routing tree with one receiver per
team (webhook receivers served by this test) delivers each team only its own alerts, with owner
and team labels and the contact annotation; and the expiry notice ladder: notices at 30d, 7d and
1d as the clock advances (one-shot `tokenwarden poll` under libfaketime), never repeated, and
started again by a new expiry."""
import json
import os
import shutil
import subprocess
import urllib.request

import pytest
import twtest

AM = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

OWNERS = r"""
[[owners]]
name = "payments"
description_glob = "pay-*"
owner = "alice"
team = "payments"
contact = "payments-oncall@example.com"
labels = { tier = "gold" }

[[owners]]
name = "by-description"
description_regex = "\\(owner: (?P<owner>[a-z]+)\\)"
team = "platform"
contact = "#platform-alerts"
"""

LADDER = """
[[policies]]
name = "expiry"
kind = "expires_soon"
notify_before = ["30d", "7d", "1d"]
min_token_age = "0s"
"""

ORPHANS = """
[[policies]]
name = "orphans"
kind = "orphaned"
severity = "info"
min_token_age = "0s"
"""

# The routing tree of docs/alerting.md: each team's alerts go to that team's receiver; the rest
# (tokens nobody owns) to the admins.
ROUTES = """route:
  receiver: admins
  group_by: [alertname, cluster, team]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team="payments"']
      receiver: team-payments
    - matchers: ['team="platform"']
      receiver: team-platform
receivers:
  - name: admins
    webhook_configs: [{{url: "{admins}"}}]
  - name: team-payments
    webhook_configs: [{{url: "{payments}"}}]
  - name: team-platform
    webhook_configs: [{{url: "{platform}"}}]
"""


class Alertmanager:
    def __init__(self, workdir, config):
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / "alertmanager.yml"
        cfg.write_text(config)
        self.port = twtest.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [AM, f"--config.file={cfg}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=open(workdir / "alertmanager.log", "w"), stderr=subprocess.STDOUT)
        twtest.wait_for(self.ready, timeout=30, what="alertmanager to start")

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def delivered(hook):
    """(token_id, labels, annotations) of every alert an Alertmanager webhook delivered."""
    return [(a["labels"].get("token_id"), a["labels"], a["annotations"])
            for body in hook.received for a in body.get("alerts", [])]


@pytest.mark.skipif(AM is None, reason="prometheus-alertmanager is not installed")
def test_each_team_receives_only_its_own_alerts(tmp_path, sim_factory, tw_factory):
    hooks = {name: twtest.WebhookReceiver() for name in ("admins", "payments", "platform", "tw")}
    am = Alertmanager(tmp_path / "am", ROUTES.format(
        admins=hooks["admins"].url, payments=hooks["payments"].url, platform=hooks["platform"].url))
    try:
        sim = sim_factory()
        pay = sim.create("pay-api", [{"action": "read", "resource": "db1"}], expires_at=twtest.soon(5))
        bob = sim.create("ingest (owner: bob)", [{"action": "read", "resource": "db1"}],
                         expires_at=twtest.soon(20))
        stray = sim.create("left over", [{"action": "read", "resource": "db1"}])
        tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                        extra=OWNERS + LADDER + ORPHANS,
                        alerting=f'alertmanager_url = "{am.url}"\nwebhook_url = "{hooks["tw"].url}"\n')
        assert tw.run("check-config", check=0).returncode == 0
        tw.start_daemon()
        twtest.wait_for(lambda: delivered(hooks["payments"]) and delivered(hooks["platform"])
                        and delivered(hooks["admins"]), timeout=60, what="each receiver's alerts")
        # Every notice of the ladder reaches tokenwarden's own webhook (one per token here).
        twtest.wait_for(lambda: len([m for m in hooks["tw"].received if m["event"] == "notice_sent"]) >= 2,
                        timeout=30, what="the notices on the webhook")
        assert tw.stop_daemon() == 0

        payments = delivered(hooks["payments"])
        assert {t for t, _, _ in payments} == {pay["id"]}, payments
        _, labels, annotations = payments[0]
        assert labels["owner"] == "alice" and labels["team"] == "payments"
        assert labels["tier"] == "gold" and labels["threshold"] == "7d" and labels["policy"] == "expiry"
        assert annotations["contact"] == "payments-oncall@example.com"

        platform = delivered(hooks["platform"])
        assert {t for t, _, _ in platform} == {bob["id"]}, platform
        _, labels, annotations = platform[0]
        assert labels["owner"] == "bob" and labels["team"] == "platform" and labels["threshold"] == "30d"
        assert "tier" not in labels
        assert annotations["contact"] == "#platform-alerts"

        admins = delivered(hooks["admins"])
        assert {t for t, _, _ in admins} == {stray["id"]}, admins
        _, labels, annotations = admins[0]
        assert labels["policy"] == "orphans" and "owner" not in labels and "team" not in labels
        assert "no [[owners]] rule matches this token" in annotations["description"]
        # Bounded labels: the token's description never becomes one.
        for _, labels, _ in payments + platform + admins:
            assert set(labels) <= {"alertname", "cluster", "policy", "severity", "token_id", "owner",
                                   "team", "threshold", "tier"}, labels

        by_event = {}
        for m in hooks["tw"].received:
            by_event.setdefault((m["event"], m["token_id"]), m)
        notice = by_event[("notice_sent", pay["id"])]
        assert (notice["owner"], notice["team"], notice["contact"]) == (
            "alice", "payments", "payments-oncall@example.com")
        assert notice["detail"]["threshold"] == "7d" and notice["detail"]["policy"] == "expiry"
        opened = by_event[("violation_opened", stray["id"])]
        assert opened["owner"] is None and opened["team"] is None and opened["contact"] is None
    finally:
        for h in hooks.values():
            h.stop()
        am.stop()


def faked(days, hours=0):
    """The environment that runs tokenwarden that far ahead of the real clock (libfaketime)."""
    offset = int((days * 24 + hours) * 3600)
    return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": f"+{offset}", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_NO_CACHE": "1"}


@pytest.mark.skipif(not os.path.exists(LIBFAKETIME), reason="faketime is not installed")
def test_notices_at_30d_7d_1d_as_the_clock_advances(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    tok = sim.create("pay-api", [{"action": "read", "resource": "db1"}], expires_at=twtest.soon(31.05))
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=OWNERS + LADDER)

    def poll_at(days, hours=0):
        proc = tw.run("poll", env=faked(days, hours))
        assert proc.returncode == 0, proc.stderr

    def notices():
        return [(e["detail"]["threshold"], e["detail"]["expires_at"])
                for e in tw.events(kinds={"notice_sent"})]

    poll_at(0)
    assert notices() == [], "31 days left: nothing to announce"
    poll_at(1, 2)
    assert [t for t, _ in notices()] == ["30d"], "faketime must move the daemon's clock"
    poll_at(1, 3)
    poll_at(20)
    assert [t for t, _ in notices()] == ["30d"], "not repeated on later polls"
    poll_at(24, 2)
    poll_at(24, 3)
    assert [t for t, _ in notices()] == ["30d", "7d"]
    poll_at(30, 2)
    poll_at(30, 2)
    assert [t for t, _ in notices()] == ["30d", "7d", "1d"], "each threshold once"

    history = tw.run("history", "--event", "notice_sent", "--format", "json", check=0)
    events = json.loads(history.stdout)
    assert len(events) == 3
    detail = events[-1]["detail"]
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert set(detail) == {"policy", "threshold", "expires_at", "remaining", "owner", "team", "contact"}
    assert (detail["owner"], detail["team"], detail["contact"]) == (
        "alice", "payments", "payments-oncall@example.com")
    first_expiry = notices()[0][1]

    # A new expiry (the token extended, 40 days from the start) restarts the ladder.
    token = [t for t in sim.tokens() if t["id"] == tok["id"]][0]
    token["expiresAt"] = twtest.soon(40)
    sim.put_token(tok["id"], token)
    poll_at(30, 3)
    now = notices()
    assert len(now) == 4 and now[3][0] == "30d" and now[3][1] != first_expiry, now
    poll_at(30, 4)
    assert len(notices()) == 4
