"""The Grafana dashboard (issue 14, config/grafana/tokenwarden.json, docs/operations.md).

1. Its JSON has the shape Grafana 10/11 imports: required fields, unique panel ids, a gridPos on
   every panel, refId and expr on every target, the `datasource` variable on every panel and target,
   `datasource`, `job` and `cluster` variables.
2. Every panel's query returns data: a real Prometheus scrapes a real daemon polling
   tokenwarden-sim (tokens that violate policies, [[owners]] rules giving teams, a revoke, a webhook
   receiver, a file export sink), and each target's expression, with the variables substituted as
   Grafana would, must return at least one series — an empty panel fails the test by its title.
   The by-team gauges have the values the owner rules give, and follow a token to a new team
   (a description change; new rules on SIGHUP).
3. scripts/render-dashboard draws the page from the same Prometheus (HTML only here: the test does
   not need chromium). With TW_DASHBOARD_PNG=path set, it also takes the screenshot there (the
   docs/img/dashboard.png of docs/operations.md is made so).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import twtest
from twtest import SOURCE_DIR

DASHBOARD = SOURCE_DIR / "config" / "grafana" / "tokenwarden.json"
RENDER = SOURCE_DIR / "scripts" / "render-dashboard"
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"row", "stat", "timeseries", "bargauge"}


def load():
    return json.loads(DASHBOARD.read_text())


def data_panels(d):
    return [p for p in d["panels"] if p["type"] != "row"]


# --- 1. the JSON --------------------------------------------------------------------------------

def test_dashboard_has_the_shape_grafana_imports():
    d = load()
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("time", dict), ("version", int)):
        assert isinstance(d.get(key), kind), f"{key}: {d.get(key)!r}"
    assert d["schemaVersion"] == 39, "Grafana 10.4/11 schema"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]), d["uid"]
    assert d.get("id") is None, "an exported dashboard carries no database id"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    for p in d["panels"]:
        assert p["type"] in PANEL_TYPES, p["type"]
        assert p.get("title"), p
        g = p.get("gridPos")
        assert g and set(g) >= {"x", "y", "w", "h"}, f"{p['title']}: gridPos {g}"
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{p['title']}: {g}"
    # No two panels overlap on the 24-column grid.
    cells = {}
    for p in d["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_every_panel_and_target_uses_the_datasource_variable():
    d = load()
    for p in data_panels(d):
        assert p.get("datasource") == DS_REF, f"{p['title']}: {p.get('datasource')}"
        assert p.get("targets"), f"{p['title']}: no targets"
        refs = [t.get("refId") for t in p["targets"]]
        assert all(refs) and len(refs) == len(set(refs)), f"{p['title']}: refIds {refs}"
        for t in p["targets"]:
            assert t.get("datasource") == DS_REF, f"{p['title']} {t['refId']}: {t.get('datasource')}"
            assert t.get("expr", "").strip(), f"{p['title']} {t['refId']}: no expr"
    # Nothing names a datasource other than through the variable.
    text = DASHBOARD.read_text()
    assert "DS_PROMETHEUS" not in text
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', text)) - {d["uid"]}
    assert uids == {"${datasource}"}, uids


def test_templating_has_datasource_and_cluster_variables():
    d = load()
    v = {x["name"]: x for x in d["templating"]["list"]}
    assert v["datasource"]["type"] == "datasource" and v["datasource"]["query"] == "prometheus"
    for name, metric in (("cluster", "tokenwarden_tokens"), ("job", "tokenwarden_build_info")):
        x = v[name]
        assert x["type"] == "query" and x["datasource"] == DS_REF, x
        assert x["multi"] and x["includeAll"] and x["allValue"] == ".*", x
        assert x["query"]["query"] == f"label_values({metric}, {name})", x["query"]
    # Every cluster-labelled metric is filtered by $cluster, the others by $job.
    for p in data_panels(d):
        for t in p["targets"]:
            assert "$cluster" in t["expr"] or "$job" in t["expr"], f"{p['title']}: {t['expr']}"


def exported_metric_names():
    names = set()
    for src in ("metrics/metrics.cpp",):
        names |= set(re.findall(r'\.Name\("(tokenwarden_[a-z_]+)"\)', (SOURCE_DIR / src).read_text()))
    return names


def test_queries_use_only_metrics_the_daemon_exports():
    exported = exported_metric_names()
    assert "tokenwarden_tokens_never_expiring" in exported
    for p in data_panels(load()):
        for t in p["targets"]:
            for name in re.findall(r"\b(tokenwarden_[a-z_]+)", t["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert name in exported or base in exported, f"{p['title']}: {name} is not exported"


# --- 2. every panel has data ---------------------------------------------------------------------

PROM_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tokenwarden
    static_configs:
      - targets: ["{target}"]
"""

POLICIES = """
[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
severity = "critical"
action = "alert"

[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "3650d"
require_expiry = true
severity = "warning"
action = "alert"

[[policies]]
name = "doomed-must-expire"
kind = "max_lifetime"
max_lifetime = "30d"
severity = "critical"
action = "revoke"
grace_period = "0s"
scope = { description = "^doomed" }
"""

OWNERS = r"""
[[owners]]
name = "team-in-description"
description_regex = "\\(team: (?P<team>[a-z-]+)\\)"

[[owners]]
name = "services"
description_glob = "svc-*"
team = "data"
"""


def seed(sim):
    now = datetime.now(timezone.utc)
    iso = lambda days: (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    star = sim.create("svc-ingest", [{"action": "write", "resource": "*"}])    # data, critical
    sim.create("svc-reader", [{"action": "read", "resource": "db1"}])          # data, no expiry
    sim.create("grafana (team: payments)", [{"action": "read", "resource": "db2"}])
    sim.create("ci (team: payments)", [], expires_at=iso(0.5))
    sim.create("svc-20d", [], expires_at=iso(20))
    sim.create("adhoc", [], expires_at=iso(3))                                 # no team
    sim.create("doomed legacy (team: growth)", [{"action": "read", "resource": "db1"}])  # revoked
    return star


def substitute(expr):
    for var, value in (("$cluster", ".*"), ("$job", ".*"), ("$__rate_interval", "10s"),
                       ("$__interval", "1s"), ("$__range", "5m")):
        expr = expr.replace(var, value)
    return expr


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(q)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def empty_panels(port, d):
    empty = []
    for p in data_panels(d):
        for t in p["targets"]:
            try:
                result = prom_query(port, substitute(t["expr"]))
            except OSError:
                result = []
            if not result:
                empty.append(f"{p['title']} ({t['refId']}: {t['expr']})")
    return empty


def test_every_panel_returns_data_from_a_real_prometheus(tmp_path, sim, tw_factory):
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is not installed: run scripts/install-deps --test-tools"
    star = seed(sim)
    hook = twtest.WebhookReceiver()
    listen = f"127.0.0.1:{twtest.free_port()}"
    export = (f'\n[audit]\n[[audit.export]]\nname = "local"\ntype = "file"\n'
              f'path = "{tmp_path / "export.jsonl"}"\n')
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "tw-token")],
                    extra=POLICIES + OWNERS + export, listen=listen,
                    safety="max_actions_percent = 100\n",
                    alerting=f'webhook_url = "{hook.url}"\n')
    tw.start_daemon()
    prom_port = twtest.free_port()
    (tmp_path / "prometheus.yml").write_text(PROM_CONFIG.format(target=listen))
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    d = load()
    try:
        twtest.wait_for(lambda: tw.db_path.exists() and tw.events(kinds={"action_succeeded"}),
                        timeout=30, what="the doomed token revoked")
        twtest.wait_for(lambda: hook.received, timeout=30, what="an alert delivered")
        # Until every panel has data (the rate windows need a few scrapes), then once more to
        # name the empty ones.
        try:
            twtest.wait_for(lambda: not empty_panels(prom_port, d), timeout=45, interval=1,
                            what="every panel with data")
        except AssertionError:
            pass
        assert empty_panels(prom_port, d) == [], "panels without data"

        # The data is what the inventory says, by team.
        def one(q):
            r = prom_query(prom_port, q)
            return float(r[0]["value"][1]) if r else None
        assert one('sum(tokenwarden_tokens_never_expiring{cluster="c1",team="data"})') == 2
        assert one('sum(tokenwarden_tokens_never_expiring{cluster="c1",team="payments"})') == 1
        assert one('sum(tokenwarden_tokens_expiring{cluster="c1",within="1d",team="payments"})') == 1
        assert one('sum(tokenwarden_tokens_expiring{cluster="c1",within="30d",team="data"})') == 1
        assert one('sum(tokenwarden_tokens_expiring{cluster="c1",within="7d",team=""})') == 1
        assert one('sum(tokenwarden_violations_open{cluster="c1",policy="no-star-write",'
                   'severity="critical",team="data"})') == 1
        assert one('sum(tokenwarden_violations_open{cluster="c1",policy="must-expire",'
                   'team="payments"})') == 1

        # Something happens while Prometheus watches (the counters' increase panels show it): a
        # second doomed token is revoked, its violation alerted.
        sent = len(hook.received)
        sim.create("doomed batch job (team: growth)", [{"action": "read", "resource": "db2"}])
        twtest.wait_for(lambda: len(tw.events(kinds={"action_succeeded"})) >= 2, timeout=30,
                        what="the second doomed token revoked")
        twtest.wait_for(lambda: len(hook.received) > sent, timeout=30, what="its alert delivered")
        twtest.wait_for(lambda: one('sum(tokenwarden_actions_total{result="succeeded"})') == 2,
                        timeout=30, interval=0.5, what="the second action scraped")

        # A description change moves the token to another team: its open violation follows
        # (the enforcer counts its open violations again when owners may have changed).
        sim.api("PATCH", f"/tokens/{star['id']}", {"description": "svc-ingest (team: payments)"})
        star_q = 'sum(tokenwarden_violations_open{cluster="c1",policy="no-star-write",team="%s"})'
        twtest.wait_for(lambda: one(star_q % "payments") == 1, timeout=30, interval=0.5,
                        what="the critical violation counted under its new team")
        assert one(star_q % "data") == 0
        assert one('sum(tokenwarden_tokens_never_expiring{cluster="c1",team="payments"})') == 2
        # New rules give the services another team, no token changes: the open violations are
        # counted again all the same (svc-reader's must-expire violation moves to "platform").
        tw.config_path.write_text(tw.config_path.read_text().replace('team = "data"',
                                                                     'team = "platform"'))
        tw.daemon.send_signal(signal.SIGHUP)
        reader_q = 'sum(tokenwarden_violations_open{cluster="c1",policy="must-expire",team="%s"})'
        twtest.wait_for(lambda: one(reader_q % "platform") == 1, timeout=30, interval=0.5,
                        what="the violation counted under the team the new rules give")
        assert one(reader_q % "data") in (0, None)
        assert one('sum(tokenwarden_tokens_never_expiring{cluster="c1",team="platform"})') == 1

        # 3. The renderer draws every panel from the same data (no chromium needed for HTML).
        page = tmp_path / "dashboard.html"
        r = subprocess.run([str(RENDER), "--prometheus", f"http://127.0.0.1:{prom_port}",
                            "--dashboard", str(DASHBOARD), "--range", "2m", "--html", str(page)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        text = page.read_text()
        assert "No data" not in text
        for p in data_panels(d):
            assert f">{p['title']}<" in text.replace("&#x27;", "'"), p["title"]
        png = os.environ.get("TW_DASHBOARD_PNG")
        if png:
            # Let the time series grow first: the documentation's screenshot.
            time.sleep(float(os.environ.get("TW_DASHBOARD_WAIT", "0")))
            r = subprocess.run([str(RENDER), "--prometheus", f"http://127.0.0.1:{prom_port}",
                                "--range", os.environ.get("TW_DASHBOARD_RANGE", "2m"),
                                "--png", png], capture_output=True, text=True, timeout=180)
            assert r.returncode == 0, r.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        hook.stop()
    assert tw.stop_daemon() == 0
