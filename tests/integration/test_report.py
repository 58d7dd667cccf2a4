"""`tokenwarden report` over a history that the real daemon recorded against tokenwarden-sim.

The history spans four simulated weeks: every poll is the real `tokenwarden poll` (the daemon's
poll + enforce cycle) run under libfaketime at a scripted instant, with the simulators' clocks
frozen at the same instant. The script keeps its own bookkeeping (a small model of what it did
to the clusters and of what tokenwarden must therefore record); every figure in the report is
checked against that model, never against the database or the report itself. Only the chain
head (seq, hash, row count) is read from the database, since it *is* the chain.

Then: the same figures in Markdown, CSV and HTML; `--at`, `--cluster`, `--from/--to`; the JSON
schema (and its strictness); CSV read back section by section; the HTML in headless Chromium
(screenshot, no console messages, no network requests, hostile text inert); a tampered
database; progress only on a terminal; atomic `-o`; and the error paths.
"""
from __future__ import annotations

import base64
import copy
import csv
import datetime as dt
import fnmatch
import html
import html.parser
import http.server
import io
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import statistics
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
import twtest

UTC = dt.timezone.utc
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SCHEMA_PATH = twtest.SOURCE_DIR / "docs" / "report-schema.json"

# --------------------------------------------------------------------------------------------
# Time: poll slots every 12 hours from Monday 2026-01-05 10:00 UTC; slot 56 is 2026-02-02 10:00.
# Scripted changes happen half-way between slots, so no boundary ever meets a poll.
T0 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SLOT = dt.timedelta(hours=12)
LAST_SLOT = 56
HOUR = 3600.0
DAY = 86400.0
# A poll records its rows a few milliseconds after its instant (the fake clock ticks from the
# process's start); generous for a loaded CI machine, tiny next to the hours between events.
SLACK = dt.timedelta(seconds=20)


def at(k: float) -> dt.datetime:
    return T0 + SLOT * k


def iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def faketime_env(t: dt.datetime) -> dict:
    assert Path(FAKETIME_LIB).exists(), "libfaketime is missing (Debian package faketime)"
    return {"FAKETIME_DONT_FAKE_MONOTONIC": "1", "LD_PRELOAD": FAKETIME_LIB,
            "FAKETIME": "@" + t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), "TZ": "UTC"}


def near(actual: str | None, expected: dt.datetime | None, what=""):
    """A time recorded by a poll at `expected` (a little after it, never before)."""
    if expected is None:
        assert actual is None, (what, actual)
        return
    assert actual is not None, (what, "missing", expected)
    delta = parse_ts(actual) - expected
    assert dt.timedelta(0) <= delta <= SLACK, (what, actual, iso(expected))


def close_to(actual: float | None, expected: float | None, what="", tol=SLACK.total_seconds()):
    if expected is None:
        assert actual is None, (what, actual)
        return
    assert actual is not None and abs(actual - expected) <= tol, (what, actual, expected)


def human(seconds: float) -> str:
    """How the HTML and Markdown reports show a duration: 45s, 5m 3s, 2h 5m, 3d 12h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    d, h, m, sec = s // 86400, (s % 86400) // 3600, (s % 3600) // 60, s % 60
    if d:
        return f"{d}d" + (f" {h}h" if h else "")
    if h:
        return f"{h}h" + (f" {m}m" if m else "")
    return f"{m}m" + (f" {sec}s" if sec else "")


def short(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------------------------
# Policies, as configured and as the model applies them.
POLICIES_TOML = """
[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "30d"
action = "revoke"
grace_period = "66h"
severity = "critical"

[[policies]]
name = "no-prod-write"
kind = "forbidden_grant"
actions = ["write"]
databases = ["prod_*"]
action = "restrict"
grace_period = "30h"
severity = "warning"
scope = { clusters = ["prod"] }

[[policies]]
name = "no-star"
kind = "all_databases_grant"
action = "alert"
severity = "info"

[[exemptions]]
policy = "must-expire"
token_id = "%(legacy)s"
reason = "vendor cannot rotate, OPS-7"
expires = 2026-12-31T00:00:00Z

[[owners]]
name = "telegraf"
description_glob = "telegraf*"
owner = "tel"
team = "a"

[[owners]]
name = "ci"
description_glob = "ci *"
owner = "ci-bot"
team = "a"

[[owners]]
name = "ad-hoc"
description_regex = "^(?P<owner>[a-z.]+) ad-hoc$"
team = "b"

[[owners]]
name = "staging"
clusters = ["staging"]
team = "b"
"""
NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"
POLICY_ORDER = ["must-expire", "no-prod-write", "no-star"]
POLICY = {
    "must-expire": {"kind": "max_lifetime", "severity": "critical", "action": "revoke",
                    "grace": dt.timedelta(hours=66), "clusters": None},
    "no-prod-write": {"kind": "forbidden_grant", "severity": "warning", "action": "restrict",
                      "grace": dt.timedelta(hours=30), "clusters": {"prod"}},
    "no-star": {"kind": "all_databases_grant", "severity": "info", "action": "alert",
                "grace": None, "clusters": None},
}
EXEMPTION_EXPIRES = dt.datetime(2026, 12, 31, tzinfo=UTC)


def owner_of(cluster: str, description: str):
    """(team, owner) by the [[owners]] rules above, first match wins; None: unowned."""
    if fnmatch.fnmatchcase(description, "telegraf*"):
        return ("a", "tel")
    if fnmatch.fnmatchcase(description, "ci *"):
        return ("a", "ci-bot")
    if m := re.fullmatch(r"([a-z.]+) ad-hoc", description):
        return ("b", m.group(1))
    if cluster == "staging":
        return ("b", None)
    return None
REMEDIATING = {"compliant", "revoked", "restricted", "removed"}


def prod_write(p):
    return p["action"] == "write" and (p["resource"] == "*" or fnmatch.fnmatchcase(p["resource"], "prod_*"))


def violates(policy: str, tok: dict) -> bool:
    if policy == "must-expire":
        return tok["expires_at"] is None or (tok["expires_at"] - tok["created_at"]) > dt.timedelta(days=30)
    if policy == "no-prod-write":
        return any(prod_write(p) for p in tok["permissions"])
    if policy == "no-star":
        return any(p["resource"] == "*" for p in tok["permissions"])
    raise AssertionError(policy)


def status_at(tok: dict, t: dt.datetime) -> str:
    if tok["revoked_at"] is not None:
        return "revoked"
    if tok["expires_at"] is not None and tok["expires_at"] <= t:
        return "expired"
    return "active"


def perms(*pairs):
    return sorted(({"action": a, "resource": r} for a, r in pairs), key=lambda p: (p["action"], p["resource"]))


def tok_json_fields(tok: dict, fields) -> dict:
    out = {}
    for f in fields:
        v = tok[f]
        out[f] = iso(v) if isinstance(v, dt.datetime) else copy.deepcopy(v)
    return out


# Fixed ids for the tokens seeded before the first poll.
def uid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


P_INGEST, P_LEGACY, P_NOEXP, P_FAIL, P_SHORT, P_DASH, P_STAR, P_WIDE, P_TMP = (uid(i) for i in range(1, 10))
S_APP, S_OLD, S_NOEXP = (uid(i) for i in range(101, 104))
D = lambda *a: dt.datetime(*a, tzinfo=UTC)  # noqa: E731
SEEDS = {
    "prod": [
        (P_INGEST, "telegraf writer sensors", perms(("write", "sensors")), D(2026, 1, 4, 8), D(2026, 2, 2, 20)),
        (P_LEGACY, "vendor-acme legacy", perms(("read", "metrics")), D(2025, 6, 1), None),
        (P_NOEXP, "jane.doe ad-hoc", perms(("read", "sensors")), D(2025, 12, 1), None),
        (P_FAIL, "ci pipeline", perms(("read", "sensors")), D(2025, 11, 1), None),
        (P_SHORT, "report-bot", perms(("read", "sensors")), D(2025, 12, 4), D(2026, 1, 6, 12)),
        (P_DASH, "grafana dashboards", perms(("read", "prod_metrics"), ("write", "prod_metrics")),
         D(2026, 1, 3, 8), D(2026, 1, 30, 20)),
        (P_STAR, "ops admin", perms(("write", "*")), D(2026, 1, 4), D(2026, 2, 2, 20)),
        (P_WIDE, "svc-export", perms(("read", "*")), D(2026, 1, 4, 8), D(2026, 2, 2, 20)),
        (P_TMP, "tmp export", perms(("read", "*")), D(2026, 1, 4, 8), D(2026, 2, 2, 20)),
    ],
    "staging": [
        (S_APP, "staging app", perms(("write", "staging_db")), D(2026, 1, 4, 8), D(2026, 2, 2, 20)),
        (S_OLD, "staging old", perms(("read", "staging_db")), D(2025, 12, 10), D(2026, 1, 8)),
        (S_NOEXP, "staging debug", perms(("read", "*")), D(2025, 12, 20), None),
    ],
}
CLUSTERS = ["prod", "staging"]


# --------------------------------------------------------------------------------------------
class Model:
    """What the script did to the clusters, and what tokenwarden must have recorded as a result.

    truth: the clusters' tokens now (what the script and the enforcement did to the simulators);
    rec: what tokenwarden knows after each successful poll. Violations, actions and events are
    derived from the documented rules (docs/policies.md, docs/database.md)."""

    def __init__(self):
        self.truth = {c: {} for c in CLUSTERS}
        self.rec = {c: {} for c in CLUSTERS}
        self.snapshots = {c: [] for c in CLUSTERS}  # (t, deep copy of rec) after each ok poll
        self.polls = []       # {"t", "cluster", "outcome"}
        self.events = []      # token events: {"t", "cluster", "token", "event", "before", "after"}
        self.violations = []  # {"cluster", "token", "policy", "opened", "resolved", "resolution", "state"}
        self.actions = []     # {"cluster", "token", "policy", "violation", "state", "attempts", "next"}
        self.action_events = []  # {"t", "cluster", "policy", "event", "final"}
        self.exemption_uses = []  # {"t", "cluster", "token", "policy"}
        self.failing_deletes = {}  # token id -> attempts that the simulator fails

    # -- the script's changes ------------------------------------------------------------------
    def add(self, cluster, tid, description, permissions, created, expires):
        self.truth[cluster][tid] = {"id": tid, "description": description, "permissions": permissions,
                                    "created_at": created, "expires_at": expires, "revoked_at": None}

    def ok_polls(self, cluster):
        return [p["t"] for p in self.polls if p["cluster"] == cluster and p["outcome"] == "ok"]

    # -- one poll --------------------------------------------------------------------------------
    def poll(self, t, cluster, outcome):
        first = not self.ok_polls(cluster)
        self.polls.append({"t": t, "cluster": cluster, "outcome": outcome})
        if outcome != "ok":
            return  # a failed or suspect poll records no token event and runs no action
        rec, truth = self.rec[cluster], self.truth[cluster]
        fields = ["description", "permissions", "created_at", "expires_at"]
        for tid, tok in truth.items():
            st = status_at(tok, t)
            r = rec.get(tid)
            if r is None or r["status"] == "removed":
                kind = "token_discovered" if first and r is None else \
                    "token_reappeared" if r is not None else "token_created"
                self._event(t, cluster, tid, kind, None,
                            tok_json_fields(tok, ["description", "permissions", "created_at", "expires_at"]))
                rec[tid] = {"tok": copy.deepcopy(tok), "status": st,
                            "first_seen": r["first_seen"] if r else t, "removed_last_seen": None}
                continue
            old = r["tok"]
            changed = [f for f in fields if old[f] != tok[f]]
            newly_revoked = old["revoked_at"] is None and tok["revoked_at"] is not None
            if changed:
                self._event(t, cluster, tid, "token_updated", tok_json_fields(old, changed),
                            tok_json_fields(tok, changed))
            if newly_revoked:
                self._event(t, cluster, tid, "token_revoked", None, None)
            elif st == "expired" and r["status"] != "expired":
                self._event(t, cluster, tid, "token_expired", None, None)
            r["tok"] = copy.deepcopy(tok)
            r["status"] = st
        previous_ok = self.ok_polls(cluster)[-2] if len(self.ok_polls(cluster)) > 1 else None
        for tid, r in rec.items():
            # A token recorded revoked or expired that the list leaves out is hidden, not removed.
            if r["status"] == "active" and tid not in truth:
                self._event(t, cluster, tid, "token_removed", None, None)
                r["status"] = "removed"
                r["removed_last_seen"] = previous_ok
        self._enforce(t, cluster)
        self.snapshots[cluster].append((t, copy.deepcopy(rec)))

    def _event(self, t, cluster, tid, kind, before, after):
        self.events.append({"t": t, "cluster": cluster, "token": tid, "event": kind,
                            "before": before, "after": after})

    def _enforce(self, t, cluster):
        rec = self.rec[cluster]
        findings, exempt = set(), set()
        for tid, r in rec.items():
            if r["status"] == "removed" or status_at(r["tok"], t) != "active":
                continue
            for name in POLICY_ORDER:
                scope = POLICY[name]["clusters"]
                if scope is not None and cluster not in scope:
                    continue
                if violates(name, r["tok"]):
                    (exempt if (name == "must-expire" and tid == P_LEGACY) else findings).add((tid, name))
        # 1. Open violations that ended are resolved (docs/policies.md, "resolved").
        for v in self.violations:
            if v["cluster"] != cluster or v["resolved"] is not None:
                continue
            r = rec.get(v["token"])
            if r is None or r["status"] == "removed":
                resolution = "removed"
            elif r["tok"]["revoked_at"] is not None:
                resolution = "revoked"
            elif status_at(r["tok"], t) == "expired":
                resolution = "compliant"
            elif (v["token"], v["policy"]) not in findings and (v["token"], v["policy"]) not in exempt:
                restricted = v["state"] in ("enforced", "enforcing") and POLICY[v["policy"]]["action"] == "restrict"
                resolution = "restricted" if restricted else "compliant"
            elif (v["token"], v["policy"]) in exempt:
                resolution = "exempted"
            else:
                continue
            v.update(resolved=t, resolution=resolution, state="resolved")
            for a in self.actions:
                assert not (a["violation"] is v and a["state"] == "planned"), "the script avoids settling"
        # 2. Exemptions are recorded once per token; new violations open.
        for tid, name in sorted(exempt):
            if not any(u["token"] == tid and u["policy"] == name for u in self.exemption_uses):
                self.exemption_uses.append({"t": t, "cluster": cluster, "token": tid, "policy": name})
        for tid, name in sorted(findings):
            if not any(v["token"] == tid and v["policy"] == name and v["resolved"] is None
                       for v in self.violations):
                self.violations.append({"cluster": cluster, "token": tid, "policy": name, "opened": t,
                                        "resolved": None, "resolution": None, "state": "open"})
        # 3. Due violations get their action planned; pending actions run.
        for v in self.violations:
            p = POLICY[v["policy"]]
            if (v["cluster"] == cluster and v["resolved"] is None and v["state"] == "open"
                    and p["action"] != "alert" and v["opened"] + p["grace"] <= t):
                v["state"] = "enforcing"
                self.actions.append({"cluster": cluster, "token": v["token"], "policy": v["policy"],
                                     "violation": v, "state": "planned", "attempts": 0, "next": None})
                self.action_events.append({"t": t, "cluster": cluster, "policy": v["policy"],
                                           "event": "action_planned", "final": None, "token": v["token"]})
        for a in self.actions:
            if a["cluster"] != cluster or a["state"] != "planned" or (a["next"] and a["next"] > t):
                continue
            a["attempts"] += 1
            tok = self.truth[cluster][a["token"]]
            if self.failing_deletes.get(a["token"], 0) > 0:
                self.failing_deletes[a["token"]] -= 1
                final = a["attempts"] >= 5
                a["state"] = "failed" if final else "planned"
                a["next"] = None if final else t + dt.timedelta(seconds=30 * 2 ** (a["attempts"] - 1))
                if final:
                    a["violation"]["state"] = "failed"
                self.action_events.append({"t": t, "cluster": cluster, "policy": a["policy"],
                                           "event": "action_failed", "final": final, "token": a["token"]})
                continue
            if POLICY[a["policy"]]["action"] == "revoke":
                tok["revoked_at"] = t  # the simulator's clock is frozen at the poll's instant
            else:
                tok["permissions"] = [p for p in tok["permissions"] if not prod_write(p)]
            a["state"] = "succeeded"
            a["violation"]["state"] = "enforced"
            self.action_events.append({"t": t, "cluster": cluster, "policy": a["policy"],
                                       "event": "action_succeeded", "final": None, "token": a["token"]})

    # -- expectations ------------------------------------------------------------------------------
    def state_at(self, cluster, t):
        """tokenwarden's recorded inventory of a cluster as of t (None before its first poll)."""
        snap = None
        for st, rec in self.snapshots[cluster]:
            if st <= t:
                snap = rec
        return snap or {}

    def ownership(self, cluster, tid):
        """The token's current recorded owner: by its description at the last poll that saw it."""
        return owner_of(cluster, self.rec[cluster][tid]["tok"]["description"])

    def keeper(self, team=None, owner=None):
        """Whether a report for --team/--owner covers a token (always, without them)."""
        def keep(cluster, tid):
            o = self.ownership(cluster, tid)
            return (team is None and owner is None) or (
                o is not None and team in (None, o[0]) and owner in (None, o[1]))
        return keep

    def inventory(self, t, clusters, keep=None):
        rows = []
        for c in clusters:
            ok = [p for p in self.ok_polls(c) if p <= t]
            for tid, r in self.state_at(c, t).items():
                if keep and not keep(c, tid):
                    continue
                tok = r["tok"]
                status = r["status"]
                if status == "active" and tok["expires_at"] is not None and tok["expires_at"] <= t:
                    status = "expired"  # expiry by time, before any poll noticed it
                last_seen = r["removed_last_seen"] if status == "removed" else ok[-1]
                rows.append({"cluster": c, "token_id": tid, "tok": tok, "status": status,
                             "first_seen": r["first_seen"], "last_seen": last_seen})
        rows.sort(key=lambda x: (x["cluster"], x["token_id"]))
        return rows

    def expect(self, frm, to, inv_at=None, cluster=None, now=None, team=None, owner=None):
        """The report's figures for a period, derived from the bookkeeping (--team/--owner: for the
        tokens whose current recorded owner matches)."""
        keep = self.keeper(team, owner)
        inv_at = inv_at or to
        now = now or REPORT_NOW
        clusters = [cluster] if cluster else list(CLUSTERS)
        inside = lambda t: frm <= t <= to  # noqa: E731
        e = {"clusters": clusters, "coverage": {}, "policies": {}, "keep": keep,
             "owner_filter": None if team is None and owner is None else {"team": team, "owner": owner}}
        for c in clusters:
            polls = [p for p in self.polls if p["cluster"] == c]
            oks = [p["t"] for p in polls if p["outcome"] == "ok"]
            start = max(frm, polls[0]["t"])
            end = min(to, max(now, start))  # an outage still going on when the report is made
            anchor = max([t for t in oks if t < frm], default=start)
            gaps, prev = [], anchor
            for t in [t for t in oks if inside(t)] + [end]:
                if (t - prev).total_seconds() > 3 * 12 * HOUR:
                    gaps.append((max(prev, start), min(t, end)))
                prev = t
            e["coverage"][c] = {
                "ok": sum(1 for p in polls if p["outcome"] == "ok" and inside(p["t"])),
                "failed": sum(1 for p in polls if p["outcome"] == "failed" and inside(p["t"])),
                "suspect": sum(1 for p in polls if p["outcome"] == "suspect" and inside(p["t"])),
                "monitored_since": polls[0]["t"],
                "last_successful_poll": max(t for t in oks if t <= to),
                "gaps": gaps,
            }
        inv = self.inventory(inv_at, clusters, keep)
        active = [r for r in inv if r["status"] == "active"]
        e["inventory"] = inv
        e["counts"] = {s: sum(1 for r in inv if r["status"] == s) for s in ("active", "expired", "revoked", "removed")}
        e["highlights"] = {
            "never_expire": sum(1 for r in active if r["tok"]["expires_at"] is None),
            "all_databases": sum(1 for r in active if any(p["resource"] == "*" for p in r["tok"]["permissions"])),
            "write": sum(1 for r in active if any(p["action"] == "write" for p in r["tok"]["permissions"])),
        }
        events = [x for x in self.events if x["cluster"] in clusters and inside(x["t"])
                  and keep(x["cluster"], x["token"])]
        e["changes"] = {k: sum(1 for x in events if x["event"] == "token_" + k)
                        for k in ("discovered", "created", "updated", "revoked", "expired", "removed", "reappeared")}
        e["events"] = [x for x in events if x["event"] != "token_discovered"]
        # Each token's description as recorded by the end of the period.
        e["last_description"] = {(c, tid): r["tok"]["description"] for c in CLUSTERS
                                 for tid, r in self.state_at(c, to).items()}
        # The exemption (of P_LEGACY) is listed in a team's report only if it names or was used for
        # one of the team's tokens.
        uses = [u for u in self.exemption_uses if u["cluster"] in clusters and u["t"] <= to
                and keep(u["cluster"], u["token"])]
        legacy_listed = (team is None and owner is None) or bool(uses) or keep("prod", P_LEGACY)
        e["exemptions"] = [{"policy": "must-expire", "token_id": P_LEGACY, "description": None, "cluster": None,
                            "reason": "vendor cannot rotate, OPS-7", "expires": iso(EXEMPTION_EXPIRES),
                            "used": len(uses)}] if legacy_listed else []
        for name in POLICY_ORDER:
            vs = [v for v in self.violations if v["policy"] == name and v["cluster"] in clusters
                  and keep(v["cluster"], v["token"])]
            resolved = [v for v in vs if v["resolved"] is not None and inside(v["resolved"])]
            ttr = sorted((v["resolved"] - v["opened"]).total_seconds() for v in resolved
                         if v["resolution"] in REMEDIATING)
            acts = [a for a in self.action_events if a["policy"] == name and a["cluster"] in clusters
                    and inside(a["t"]) and keep(a["cluster"], a["token"])]
            resolutions = {}
            for v in resolved:
                resolutions[v["resolution"]] = resolutions.get(v["resolution"], 0) + 1
            scope = POLICY[name]["clusters"]
            e["policies"][name] = {
                "opened": sum(1 for v in vs if inside(v["opened"])),
                "resolved": len(resolved),
                "open_at_end": sum(1 for v in vs if v["opened"] <= to and (v["resolved"] is None or v["resolved"] > to)),
                "resolutions": resolutions,
                "ttr_count": len(ttr),
                "ttr_median": statistics.median(ttr) if ttr else None,
                "ttr_max": max(ttr) if ttr else None,
                "planned": sum(1 for a in acts if a["event"] == "action_planned"),
                "succeeded": sum(1 for a in acts if a["event"] == "action_succeeded"),
                "failed": sum(1 for a in acts if a["event"] == "action_failed" and a["final"]),
                "skipped": 0, "halted": 0, "awaiting_approval_at_end": 0,
                "tokens_judged": sum(1 for r in active if scope is None or r["cluster"] in scope),
                "exemptions_in_force": 1 if name == "must-expire" and EXEMPTION_EXPIRES > frm and legacy_listed else 0,
                "exemptions_used": len({(u["cluster"], u["token"]) for u in uses if u["policy"] == name}),
            }
        return e

    def open_violations_at(self, t, clusters, keep=None):
        return sum(1 for v in self.violations if v["cluster"] in clusters and v["opened"] <= t
                   and (v["resolved"] is None or v["resolved"] > t) and (keep is None or keep(v["cluster"], v["token"])))

    def status_counts_at(self, t, clusters, keep=None):
        inv = self.inventory(t, clusters, keep) if any(self.state_at(c, t) for c in clusters) else []
        return {s: sum(1 for r in inv if r["status"] == s) for s in ("active", "expired", "revoked", "removed")}


# --------------------------------------------------------------------------------------------
class History:
    """Two simulated clusters, tokenwarden, and the script that drives them through four weeks."""

    def __init__(self, root: Path):
        self.root = root
        self.sims = {c: twtest.Sim(root / f"sim-{c}") for c in CLUSTERS}
        blocks = [twtest.clustered_block(c, self.sims[c], root / f"{c}.token") for c in CLUSTERS]
        self.tw = twtest.Tokenwarden(root / "tw", blocks, extra=POLICIES_TOML % {"legacy": P_LEGACY},
                                     safety=NO_LIMITS, poll_interval="12h")
        self.model = Model()
        self.poll_rcs = []

    def stop(self):
        for s in self.sims.values():
            s.stop()

    # -- the script's changes, mirrored in the model ---------------------------------------------
    def _clock(self, cluster, t):
        self.sims[cluster].set_clock(now=iso(t))

    def create(self, cluster, k, description, permissions, lifetime_days=None):
        t = at(k)
        self._clock(cluster, t)
        expires = t + dt.timedelta(days=lifetime_days) if lifetime_days else None
        tok = self.sims[cluster].create(description, permissions, expires_at=iso(expires) if expires else None)
        assert parse_ts(tok["createdAt"]) == t
        self.model.add(cluster, tok["id"], description, perms(*[(p["action"], p["resource"]) for p in permissions]),
                       t, expires)
        return tok["id"]

    def patch(self, cluster, k, tid, **body):
        self._clock(cluster, at(k))
        status, _ = self.sims[cluster].api("PATCH", f"/tokens/{tid}", body)
        assert status == 200
        tok = self.model.truth[cluster][tid]
        if "description" in body:
            tok["description"] = body["description"]
        if "permissions" in body:
            tok["permissions"] = perms(*[(p["action"], p["resource"]) for p in body["permissions"]])

    def revoke(self, cluster, k, tid):
        self._clock(cluster, at(k))
        status, _ = self.sims[cluster].api("DELETE", f"/tokens/{tid}")
        assert status == 204
        self.model.truth[cluster][tid]["revoked_at"] = at(k)

    def remove(self, cluster, tid):
        self.sims[cluster].remove_token(tid)
        del self.model.truth[cluster][tid]

    # -- polls -------------------------------------------------------------------------------------
    def poll(self, k, outcomes: dict):
        t = at(k)
        for c in outcomes:
            self._clock(c, t)
        args = ["poll"] if len(outcomes) == len(CLUSTERS) else ["poll", "--cluster", next(iter(outcomes))]
        proc = self.tw.run(*args, env=faketime_env(t), timeout=60)
        want = 1 if "failed" in outcomes.values() else 0
        assert proc.returncode == want, (k, proc.returncode, proc.stdout, proc.stderr[-3000:])
        self.poll_rcs.append(proc.returncode)
        for c, outcome in outcomes.items():
            self.model.poll(t, c, outcome)

    def run(self):
        m = self.model
        for c, seeds in SEEDS.items():
            body = []
            for tid, desc, ps, created, expires in seeds:
                m.add(c, tid, desc, ps, created, expires)
                tok = {"id": tid, "description": desc, "permissions": ps, "createdAt": iso(created)}
                if expires:
                    tok["expiresAt"] = iso(expires)
                body.append(tok)
            self.sims[c].seed(body)
        # The revoke of "ci pipeline" fails five times: the action fails for good.
        self.sims["prod"].fault(kind="status", status=500, method="DELETE", path=P_FAIL, count=5)
        m.failing_deletes[P_FAIL] = 5
        ids = {}
        outage = None
        for k in range(LAST_SLOT + 1):
            h = k - 0.5  # changes made between the previous poll and this one
            if k == 2:  # the dashboards' owner drops the write grant within the grace period
                self.patch("prod", h, P_DASH, permissions=[{"action": "read", "resource": "prod_metrics"}])
            if k == 4:  # staging's debug token is revoked by its owner
                self.revoke("staging", h, S_NOEXP)
            if k == 9:
                ids["new1"] = self.create("prod", h, "svc-ingest-17", [{"action": "write", "resource": "sensors"}], 20)
            if k == 10:
                self.patch("prod", h, P_INGEST, description="telegraf writer sensors-eu")
            if k == 12:  # a CI token that writes to production; its restrict is delayed by the outage
                ids["restrict"] = self.create("prod", h, "ci deploy", [{"action": "read", "resource": "prod_billing"},
                                                                       {"action": "write", "resource": "prod_billing"}], 14)
            if k == 13:  # prod is unreachable for five polls
                outage = self.sims["prod"].fault(kind="status", status=503, method="GET", path="/tokens")["id"]
            if k == 18:
                self.sims["prod"].control("DELETE", f"/faults/{outage}")
            if k == 20:
                self.remove("prod", P_TMP)
            if k == 21:
                ids["s_tmp"] = self.create("staging", h, "staging tmp", [{"action": "read", "resource": "staging_db"}], 5)
            if k == 25:
                ids["noexp2"] = self.create("prod", h, "bob ad-hoc", [{"action": "read", "resource": "sensors"}])
            if k == 30:  # its owner revokes it before the grace period ends
                self.revoke("prod", h, ids["noexp2"])
                self.sims["staging"].fault(kind="status", status=500, method="GET", count=1)
            if k == 34:
                self.remove("staging", ids["s_tmp"])
            if k == 36:
                self.patch("staging", h, S_APP, description="staging app v2")
            if k == 40:
                self.patch("prod", h, ids["new1"], description="svc-ingest-17 (eu)",
                           permissions=[{"action": "read", "resource": "sensors"},
                                        {"action": "write", "resource": "sensors"}])
                self.sims["staging"].fault(kind="empty", method="GET", count=1)
            if k == 45:  # created while staging is not polled (k 44-47)
                ids["hotfix"] = self.create("staging", h, "staging hotfix", [{"action": "read", "resource": "staging_db"}])
            if k == 54:
                ids["late"] = self.create("prod", h, "late ad-hoc", [{"action": "read", "resource": "sensors"}])
            if k == 56:
                ids["prodw"] = self.create("prod", h, "etl writer", [{"action": "write", "resource": "prod_events"}], 10)

            outcomes = {"prod": "failed" if 13 <= k <= 17 else "ok"}
            if not 44 <= k <= 47:
                outcomes["staging"] = {30: "failed", 40: "suspect"}.get(k, "ok")
            self.poll(k, outcomes)
        self.ids = ids
        # The simulators hold what the model says the script and the enforcement did to them.
        for c in CLUSTERS:
            actual = {t["id"]: t for t in self.sims[c].tokens()}
            assert set(actual) == set(m.truth[c]), c
            for tid, tok in m.truth[c].items():
                a = actual[tid]
                assert a["description"] == tok["description"] and a["permissions"] == tok["permissions"], tid
                assert a.get("revokedAt") == (iso(tok["revoked_at"]) if tok["revoked_at"] else None), tid

    # -- reports -------------------------------------------------------------------------------------
    def report(self, *args, check=0, now=None, db=None):
        now = now or REPORT_NOW
        extra = ["--db", str(db)] if db else []
        return self.tw.run("report", *extra, *args, env=faketime_env(now), check=check)

    def report_bytes(self, *args, db=None) -> bytes:
        """stdout exactly as written (Tokenwarden.run's text mode would fold CRLF)."""
        extra = ["--db", str(db)] if db else []
        proc = subprocess.run([twtest.binary("tokenwarden"), "--config", str(self.tw.config_path), "report", *extra,
                               *args], capture_output=True, timeout=120,
                              env=dict(os.environ, **faketime_env(REPORT_NOW)))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def report_json(self, *args, **kw):
        return json.loads(self.report(*args, "--format", "json", **kw).stdout)


REPORT_NOW = dt.datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
FROM = dt.datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
TO = dt.datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
MID = dt.datetime(2026, 1, 19, 16, 0, tzinfo=UTC)       # between slots 28 and 29
WIN_FROM = dt.datetime(2026, 1, 12, 0, 0, tzinfo=UTC)   # inside the prod outage
WIN_TO = dt.datetime(2026, 1, 26, 0, 0, tzinfo=UTC)
PERIOD = ["--from", iso(FROM), "--to", iso(TO)]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-history")
    h = History(root)
    try:
        h.run()
        yield h
    finally:
        h.stop()


def chain_head(tw):
    """(rows, head seq, head hash) of the audit log: the chain itself, read from the database."""
    rows, head_seq = tw.query("SELECT count(*), max(seq) FROM audit_log")[0]
    head_hash = tw.query("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")[0][0]
    return rows, head_seq, head_hash


# --------------------------------------------------------------------------------------------
# The JSON report, field by field.
def check_json(rep: dict, exp: dict, h: History, frm, to, inv_at, cluster=None, now=None):
    assert rep["$schema"] == "https://tokenwarden.dev/schemas/report-1.json" and rep["schema_version"] == 1
    near(rep["generated_at"], now or REPORT_NOW, "generated_at")
    assert rep["tokenwarden_version"]
    assert rep["database"] == str(h.tw.db_path)
    assert rep["configuration"] == str(h.tw.config_path)
    assert rep["period"] == {"from": iso(frm), "to": iso(to)}
    assert rep["cluster_filter"] == cluster
    assert rep["owner_filter"] == exp["owner_filter"]
    assert rep["clusters"] == exp["clusters"]

    # Coverage.
    assert [c["cluster"] for c in rep["coverage"]] == exp["clusters"]
    for c in rep["coverage"]:
        x = exp["coverage"][c["cluster"]]
        assert c["poll_interval_seconds"] == 12 * HOUR and c["poll_interval_source"] == "config"
        assert c["polls"] == {"ok": x["ok"], "failed": x["failed"], "suspect": x["suspect"]}, c["cluster"]
        near(c["monitored_since"], x["monitored_since"], "monitored_since")
        near(c["last_successful_poll"], x["last_successful_poll"], "last_successful_poll")
        assert len(c["gaps"]) == len(x["gaps"]), (c["cluster"], c["gaps"], x["gaps"])
        total = 0.0
        for g, (gf, gt) in zip(c["gaps"], x["gaps"]):
            # A gap bounded by the period starts exactly there; one bounded by a poll, just after it.
            if gf == frm:
                assert g["from"] == iso(frm)
            else:
                near(g["from"], gf, "gap from")
            near(g["to"], gt, "gap to")
            close_to(g["seconds"], (gt - gf).total_seconds(), "gap seconds")
            close_to(g["seconds"], (parse_ts(g["to"]) - parse_ts(g["from"])).total_seconds(), "gap", tol=0.001)
            total += g["seconds"]
        close_to(c["gap_seconds"], total, "gap_seconds", tol=0.01)

    # Inventory.
    inv = rep["inventory"]
    assert inv["at"] == iso(inv_at)
    assert inv["counts"] == exp["counts"]
    assert inv["highlights"] == exp["highlights"]
    assert [(t["cluster"], t["token_id"]) for t in inv["tokens"]] == \
        [(r["cluster"], r["token_id"]) for r in exp["inventory"]]
    for t, r in zip(inv["tokens"], exp["inventory"]):
        tok = r["tok"]
        what = (r["cluster"], tok["description"])
        assert t["description"] == tok["description"], what
        assert t["status"] == r["status"], what
        assert t["permissions"] == tok["permissions"], what
        assert t["created_at"] == iso(tok["created_at"]), what
        assert t["expires_at"] == (iso(tok["expires_at"]) if tok["expires_at"] else None), what
        assert t["revoked_at"] == (iso(tok["revoked_at"]) if tok["revoked_at"] else None), what
        near(t["first_seen"], r["first_seen"], ("first_seen",) + what)
        near(t["last_seen"], r["last_seen"], ("last_seen",) + what)
        active = r["status"] == "active"
        assert t["never_expires"] == (active and tok["expires_at"] is None), what
        assert t["all_databases"] == any(p["resource"] == "*" for p in tok["permissions"]), what
        assert t["writes"] == any(p["action"] == "write" for p in tok["permissions"]), what

    # Changes.
    ch = rep["changes"]
    assert ch["counts"] == exp["changes"]
    seqs = [e["seq"] for e in ch["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    def slot_of(time_text):
        k = (parse_ts(time_text) - T0) / SLOT
        assert abs(k - round(k)) * SLOT <= SLACK, time_text
        return round(k)

    got = sorted((slot_of(e["time"]), e["cluster"], e["token_id"], e["event"]) for e in ch["events"])
    want = sorted((round((x["t"] - T0) / SLOT), x["cluster"], x["token"], x["event"]) for x in exp["events"])
    assert got == want
    by_key = {(slot_of(e["time"]), e["token_id"], e["event"]): e for e in ch["events"]}
    for x in exp["events"]:
        e = by_key[(round((x["t"] - T0) / SLOT), x["token"], x["event"])]
        assert e["description"] == exp["last_description"][(x["cluster"], x["token"])], (e, x)
        if x["event"] == "token_updated":
            assert e["before"] == x["before"] and e["after"] == x["after"], e
        elif x["event"] == "token_created":
            assert e["before"] is None and {k: e["after"].get(k) for k in x["after"]} == x["after"], e
            assert e["after"]["status"] == "active"
        else:
            assert e["before"] is None and e["after"] is None, e

    # Compliance.
    comp = rep["compliance"]
    assert [p["policy"] for p in comp["policies"]] == POLICY_ORDER
    for p in comp["policies"]:
        x, cfg = exp["policies"][p["policy"]], POLICY[p["policy"]]
        name = p["policy"]
        assert p["configured"] is True
        assert (p["kind"], p["severity"], p["action"], p["mode"]) == (cfg["kind"], cfg["severity"], cfg["action"], "inherit")
        assert p["tokens_judged"] == x["tokens_judged"], (name, p["tokens_judged"], x["tokens_judged"])
        assert p["violations"] == {"opened": x["opened"], "resolved": x["resolved"], "open_at_end": x["open_at_end"],
                                   "resolutions": x["resolutions"]}, name
        assert p["time_to_remediate"]["count"] == x["ttr_count"], name
        close_to(p["time_to_remediate"]["median_seconds"], x["ttr_median"], (name, "median"))
        close_to(p["time_to_remediate"]["max_seconds"], x["ttr_max"], (name, "max"))
        assert p["actions"] == {"planned": x["planned"], "succeeded": x["succeeded"], "failed": x["failed"],
                                "skipped": x["skipped"], "halted": x["halted"],
                                "awaiting_approval_at_end": x["awaiting_approval_at_end"]}, name
        assert p["exemptions"] == {"in_force": x["exemptions_in_force"], "used": x["exemptions_used"]}, name
    assert comp["halts"] == []
    assert comp["exemptions"] == exp["exemptions"]

    # The series: evenly spaced from the start to the end, each point as the model has it then.
    series = rep["series"]
    assert len(series) == 60 and series[0]["at"] == iso(frm) and series[-1]["at"] == iso(to)
    step = (to - frm) / 59
    polls = [p["t"] for p in h.model.polls]
    checked = 0
    for i, s in enumerate(series):
        t = parse_ts(s["at"])
        assert abs((t - (frm + step * i)).total_seconds()) < 0.002
        if any(dt.timedelta(0) <= t - p <= SLACK for p in polls):
            continue  # within a poll's own few milliseconds: either answer is right
        assert s["tokens"] == h.model.status_counts_at(t, exp["clusters"], exp["keep"]), (i, s)
        assert s["open_violations"] == h.model.open_violations_at(t, exp["clusters"], exp["keep"]), (i, s)
        checked += 1
    assert checked >= 55

    # Integrity: the chain head is the database's own.
    rows, head_seq, head_hash = chain_head(h.tw)
    assert rep["integrity"] == {"ok": True, "rows_checked": rows, "head_seq": head_seq, "head_hash": head_hash,
                                "first_bad_seq": None, "problem": None, "append_only_triggers": True,
                                "checkpoint": None}


def test_history_matches_the_script(history):
    """The scenario itself happened as scripted (the expectations below rest on it)."""
    m = history.model
    exp = m.expect(FROM, TO)
    p1, p2, p3 = (exp["policies"][n] for n in POLICY_ORDER)
    # The script's intent, spelled out: the model must agree with it.
    assert (p1["opened"], p1["resolved"], p1["open_at_end"], p1["planned"], p1["succeeded"], p1["failed"]) == (7, 5, 2, 3, 2, 1)
    assert p1["resolutions"] == {"revoked": 4, "compliant": 1}
    assert (p1["ttr_median"], p1["ttr_max"]) == (60 * HOUR, 84 * HOUR)
    assert (p2["opened"], p2["resolved"], p2["open_at_end"], p2["planned"], p2["succeeded"]) == (4, 3, 1, 2, 2)
    assert p2["resolutions"] == {"compliant": 1, "restricted": 2} and (p2["ttr_median"], p2["ttr_max"]) == (48 * HOUR, 84 * HOUR)
    assert (p3["opened"], p3["resolved"], p3["open_at_end"], p3["planned"]) == (4, 3, 1, 0)
    assert p3["resolutions"] == {"compliant": 1, "revoked": 1, "removed": 1}
    assert exp["coverage"]["prod"]["failed"] == 5 and len(exp["coverage"]["prod"]["gaps"]) == 1
    assert exp["coverage"]["staging"]["failed"] == 1 and exp["coverage"]["staging"]["suspect"] == 1
    assert len(exp["coverage"]["staging"]["gaps"]) == 1
    assert all(exp["changes"][k] > 0 for k in exp["changes"] if k != "reappeared")
    # tokenwarden recorded the same polls (outcome by outcome) as the script made.
    recorded = [(c, o) for c, o in history.tw.query("SELECT cluster, outcome FROM polls ORDER BY id")]
    assert sorted(recorded) == sorted((p["cluster"], p["outcome"]) for p in m.polls)
    # Timestamps in the audit log are the simulated ones (libfaketime works with the binary).
    first, last = history.tw.query("SELECT min(recorded_at), max(recorded_at) FROM audit_log")[0]
    near(first, T0, "first event")
    near(last, at(LAST_SLOT), "last event")
    history.tw.run("verify", check=0)


def test_json_report_full_period(history):
    rep = history.report_json(*PERIOD)
    exp = history.model.expect(FROM, TO)
    check_json(rep, exp, history, FROM, TO, TO)


def test_json_report_inventory_at_mid_period(history):
    rep = history.report_json(*PERIOD, "--at", iso(MID))
    exp = history.model.expect(FROM, TO, inv_at=MID)
    check_json(rep, exp, history, FROM, TO, MID)
    # The mid-period inventory differs from the final one (the check above is not vacuous).
    assert exp["counts"] != history.model.expect(FROM, TO)["counts"]


def test_json_report_one_cluster(history):
    rep = history.report_json(*PERIOD, "--cluster", "staging")
    exp = history.model.expect(FROM, TO, cluster="staging")
    check_json(rep, exp, history, FROM, TO, TO, cluster="staging")
    assert all(t["cluster"] == "staging" for t in rep["inventory"]["tokens"])
    assert all(e["cluster"] == "staging" for e in rep["changes"]["events"])
    assert rep["compliance"]["policies"][1]["tokens_judged"] == 0  # no-prod-write is scoped to prod
    prod = history.report_json(*PERIOD, "--cluster", "prod")
    check_json(prod, history.model.expect(FROM, TO, cluster="prod"), history, FROM, TO, TO, cluster="prod")


def test_json_report_period_boundaries(history):
    """A period that starts inside the prod outage and ends mid-history."""
    rep = history.report_json("--from", iso(WIN_FROM), "--to", iso(WIN_TO))
    exp = history.model.expect(WIN_FROM, WIN_TO)
    check_json(rep, exp, history, WIN_FROM, WIN_TO, WIN_TO)
    prod = exp["coverage"]["prod"]
    assert prod["gaps"] == [(WIN_FROM, at(18))] and prod["failed"] == 4  # clipped at --from
    assert exp["changes"]["discovered"] == 0
    # Dates are midnight UTC; without --from/--to the period is the 30 days up to now.
    dates = history.report_json("--from", "2026-01-12", "--to", "2026-01-26")
    assert dates["period"] == rep["period"] and dates["changes"] == rep["changes"]
    default = history.report_json()
    assert default["period"]["to"][:16] == iso(REPORT_NOW)[:16]
    assert default["period"]["from"][:16] == iso(REPORT_NOW - dt.timedelta(days=30))[:16]
    assert default["inventory"]["at"] == default["period"]["to"]
    # A period that ends before the first poll: nothing was monitored yet.
    early = history.report_json("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-05T09:00:00Z")
    assert all(c["polls"] == {"ok": 0, "failed": 0, "suspect": 0} and c["gaps"] == [] for c in early["coverage"])
    assert early["inventory"]["counts"] == {"active": 0, "expired": 0, "revoked": 0, "removed": 0}
    assert early["changes"]["events"] == [] and all(p["violations"]["opened"] == 0
                                                      for p in early["compliance"]["policies"])
    # --from and --to are inclusive: a period of one instant around slot 0's events holds them.
    t0_events = [e for e in history.model.events if e["t"] == T0]
    first_at = history.tw.query("SELECT min(recorded_at) FROM audit_log WHERE event = 'token_discovered'")[0][0]
    exact = history.report_json("--from", first_at, "--to", first_at)
    assert exact["changes"]["counts"]["discovered"] >= 1
    assert exact["changes"]["counts"]["discovered"] <= sum(1 for e in t0_events if e["event"] == "token_discovered")


# --------------------------------------------------------------------------------------------
# Owners: reports per team (--team, --owner) and the owners section.
def expected_owners(m: Model, frm, to, team=None, owner=None):
    """The owners section (by_team, by_owner) from the bookkeeping, as the JSON report has it."""
    keep = m.keeper(team, owner)
    groups = {}

    def group(cluster, tid):
        o = m.ownership(cluster, tid)
        k = (2, "", 1, "") if o is None else (0, o[0], 0 if o[1] else 1, o[1] or "")
        return groups.setdefault(k, {"tokens": 0, "opened": 0, "open_at_end": 0, "ttr": []})

    for r in m.inventory(to, CLUSTERS, keep):
        if r["status"] == "active":
            group(r["cluster"], r["token_id"])["tokens"] += 1
    for v in m.violations:
        if v["opened"] > to or not keep(v["cluster"], v["token"]):
            continue
        g = group(v["cluster"], v["token"])
        g["opened"] += frm <= v["opened"]
        g["open_at_end"] += v["resolved"] is None or v["resolved"] > to
        if v["resolved"] is not None and frm <= v["resolved"] <= to and v["resolution"] in REMEDIATING:
            g["ttr"].append((v["resolved"] - v["opened"]).total_seconds())

    def row(k, g, with_owner):
        r = {"team": k[1] if k[0] == 0 else None, "unowned": k[0] == 2, "tokens": g["tokens"],
             "violations": {"opened": g["opened"], "open_at_end": g["open_at_end"]},
             "ttr": (len(g["ttr"]), statistics.median(g["ttr"]) if g["ttr"] else None,
                     max(g["ttr"]) if g["ttr"] else None)}
        if with_owner:
            r["owner"] = k[3] if k[2] == 0 else None
        return r

    teams = {}
    for k, g in groups.items():
        t = teams.setdefault(k[:2], {"tokens": 0, "opened": 0, "open_at_end": 0, "ttr": []})
        for f in ("tokens", "opened", "open_at_end", "ttr"):
            t[f] += g[f]
    return ([row(k + (0, ""), teams[k], False) for k in sorted(teams)],
            [row(k, groups[k], True) for k in sorted(groups) if k[0] != 2])


def check_owner_rows(got, want):
    assert len(got) == len(want), (got, want)
    for g, w in zip(copy.deepcopy(got), copy.deepcopy(want)):
        ttr = g.pop("time_to_remediate")
        count, median, mx = w.pop("ttr")
        assert g == w, (g, w)
        assert ttr["count"] == count, (g, ttr, count)
        close_to(ttr["median_seconds"], median, (g, "median"))
        close_to(ttr["max_seconds"], mx, (g, "max"))


def team_tokens(m: Model, team):
    return {(c, tid) for c in CLUSTERS for tid in m.rec[c] if (m.ownership(c, tid) or (None,))[0] == team}


def test_owners_section_per_team_and_owner(history):
    m = history.model
    by_team, by_owner = expected_owners(m, FROM, TO)
    # The scenario: two teams, both with violations, and unowned tokens.
    assert [(r["team"], r["unowned"]) for r in by_team] == [("a", False), ("b", False), (None, True)]
    assert all(r["violations"]["opened"] > 0 for r in by_team)
    assert by_team[0]["violations"]["open_at_end"] > 0 and by_team[1]["ttr"][0] > 0
    assert [(r["team"], r["owner"]) for r in by_owner] == [
        ("a", "ci-bot"), ("a", "tel"), ("b", "bob"), ("b", "jane.doe"), ("b", "late"), ("b", None)]
    rep = history.report_json(*PERIOD)
    assert rep["owners"]["recorded"] is True
    check_owner_rows(rep["owners"]["by_team"], by_team)
    check_owner_rows(rep["owners"]["by_owner"], by_owner)
    # A past period: the figures of that period, the owners of now.
    win_team, _ = expected_owners(m, WIN_FROM, WIN_TO)
    check_owner_rows(history.report_json("--from", iso(WIN_FROM), "--to", iso(WIN_TO))["owners"]["by_team"],
                     win_team)

    # Markdown and CSV: the same rows (the table is the chart's data); HTML: the table and the chart.
    label = lambda r: "(unowned)" if r["unowned"] else r["team"] or "(no team)"  # noqa: E731
    md = md_tables(history.report(*PERIOD, "--format", "md").stdout)
    assert [r[:4] for r in md["Owners"][0][1:]] == [
        [label(r), str(r["tokens"]), str(r["violations"]["opened"]), str(r["violations"]["open_at_end"])]
        for r in by_team]
    for r, x in zip(md["Owners"][0][1:], by_team):
        assert r[4] == (f"{human(x['ttr'][1])} / {human(x['ttr'][2])}" if x["ttr"][0] else "—"), r
    assert [r[1] for r in md["Owners"][1][1:]] == [r["owner"] or "(no owner)" for r in by_owner]
    s = csv_sections(history.report_bytes(*PERIOD, "--format", "csv").decode())
    assert [(r["team"], r["unowned"], int(r["tokens"]), int(r["violations_opened"]), int(r["open_at_end"]),
             int(r["remediated"])) for r in s["owners_by_team"]] == \
        [(r["team"] or "", "true" if r["unowned"] else "false", r["tokens"], r["violations"]["opened"],
          r["violations"]["open_at_end"], r["ttr"][0]) for r in by_team]
    assert [(r["team"], r["owner"]) for r in s["owners_by_owner"]] == [(r["team"], r["owner"] or "") for r in by_owner]
    page_text = history.report(*PERIOD, "--format", "html").stdout
    page = Page(page_text)
    assert page.errors == []
    assert [r[:4] for r in page.table("owners")[1:]] == [
        [label(r), str(r["tokens"]), str(r["violations"]["opened"]), str(r["violations"]["open_at_end"])]
        for r in by_team]
    chart = page_text[page_text.index('aria-label="open violations per team"'):]
    chart = chart[:chart.index("</svg>")]
    bars = re.findall(r'text-anchor="end">([^<]*)</text><rect [^>]*/><text [^>]*>([0-9,]+)</text>', chart)
    want = sorted(((label(r), str(r["violations"]["open_at_end"])) for r in by_team
                   if r["violations"]["open_at_end"] > 0), key=lambda x: -int(x[1]))
    assert sorted(bars) == sorted(want) and [int(b[1]) for b in bars] == sorted((int(b[1]) for b in bars), reverse=True)


def test_team_report_holds_only_the_teams_tokens(history):
    m = history.model
    mine, theirs = team_tokens(m, "a"), team_tokens(m, "b")
    assert len(mine) == 3 and len(theirs) == 8
    rep = history.report_json(*PERIOD, "--team", "a")
    exp = m.expect(FROM, TO, team="a")
    check_json(rep, exp, history, FROM, TO, TO)
    # Every section: no token but the team's, and the team's figures are not empty.
    listed = {(t["cluster"], t["token_id"]) for t in rep["inventory"]["tokens"]}
    changed = {(e["cluster"], e["token_id"]) for e in rep["changes"]["events"]}
    assert listed == mine and changed <= mine and changed
    assert {(a["cluster"], a["token_id"]) for a in rep["inventory"]["anomalies"]} <= mine
    assert sum(p["violations"]["opened"] for p in rep["compliance"]["policies"]) == 2
    assert rep["compliance"]["policies"][0]["actions"]["failed"] == 1  # ci pipeline's revoke
    assert rep["compliance"]["exemptions"] == []  # the legacy token is nobody's
    by_team, by_owner = expected_owners(m, FROM, TO, team="a")
    assert [r["team"] for r in by_team] == ["a"]
    check_owner_rows(rep["owners"]["by_team"], by_team)
    check_owner_rows(rep["owners"]["by_owner"], by_owner)
    # Team b, and one owner of it (both filters must hold).
    check_json(history.report_json(*PERIOD, "--team", "b"), m.expect(FROM, TO, team="b"), history, FROM, TO, TO)
    jane = history.report_json(*PERIOD, "--team", "b", "--owner", "jane.doe")
    check_json(jane, m.expect(FROM, TO, team="b", owner="jane.doe"), history, FROM, TO, TO)
    assert [t["description"] for t in jane["inventory"]["tokens"]] == ["jane.doe ad-hoc"]
    tel = history.report_json(*PERIOD, "--owner", "tel", "--at", iso(MID))
    check_json(tel, m.expect(FROM, TO, inv_at=MID, owner="tel"), history, FROM, TO, MID)
    staging = history.report_json(*PERIOD, "--team", "b", "--cluster", "staging")
    check_json(staging, m.expect(FROM, TO, cluster="staging", team="b"), history, FROM, TO, TO, cluster="staging")
    validator, _ = schema_validator()
    for r in (rep, jane, staging):
        assert list(validator.iter_errors(r)) == []

    # Markdown, HTML and CSV name no token of another team (nor an unowned one), and say whose
    # report they are.
    others = {(c, tid) for c in CLUSTERS for tid in m.rec[c]} - mine
    descriptions = {m.rec[c][tid]["tok"]["description"] for c, tid in others}
    descriptions |= {x["before"]["description"] for x in m.events
                     if x["event"] == "token_updated" and (x["cluster"], x["token"]) in others
                     and "description" in x["before"]}
    for fmt, marker in (("md", 'only those of team "a"'), ("html", 'Tokens of team "a" only'),
                        ("csv", "team_filter,a")):
        raw = history.report_bytes(*PERIOD, "--team", "a", "--format", fmt).decode()
        text = html.unescape(raw) if fmt == "html" else raw
        assert marker in text, fmt
        for c, tid in mine:
            assert tid in text, (fmt, tid)
        for c, tid in others:
            assert tid not in text, (fmt, tid)
        for d in descriptions:
            assert d not in text, (fmt, d)


# --------------------------------------------------------------------------------------------
# The other formats carry the same key figures.
class Page(html.parser.HTMLParser):
    """Tables (by section), text, tags and attributes of an HTML page; checks nesting."""
    VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.stack, self.errors = [], [], []
        self.tables, self.section = [], None
        self.cell, self.text = None, []
        self.in_style = False
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "h2":
            self.section = dict(attrs).get("id")
        if tag == "table":
            self.tables.append({"section": self.section, "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")
        self.in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self.cell).strip())
            self.cell = None
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            return
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)

    def table(self, section, index=0):
        return [t["rows"] for t in self.tables if t["section"] == section][index]

    def all_text(self):
        return "".join(self.text)


def md_tables(text):
    """Pipe tables of a Markdown report by their `## heading`: lists of rows of cells."""
    out, section, current = {}, None, None
    for line in text.split("\n"):
        if line.startswith("## "):
            section = line[3:].split(" at ")[0]
            current = None
        elif line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if current is None:
                current = []
                out.setdefault(section, []).append(current)
            if not all(set(c) <= {"-"} and c for c in cells):
                current.append(cells)
        else:
            current = None
    return out


def csv_sections(text):
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out, i = {}, 0
    while i < len(rows):
        if rows[i] == []:
            i += 1
            continue
        assert len(rows[i]) == 2 and rows[i][0] == "section", rows[i]
        name, header = rows[i][1], rows[i + 1]
        i += 2
        body = []
        while i < len(rows) and rows[i] != []:
            assert len(rows[i]) == len(header), (name, rows[i])
            body.append(dict(zip(header, rows[i])))
            i += 1
        assert name not in out
        out[name] = body
    return out


def check_compliance_rows(table, exp):
    """The policy compliance table of the Markdown and HTML reports (header row first)."""
    comp = {r[0]: r for r in table[1:]}
    for name in POLICY_ORDER:
        x, cfg = exp["policies"][name], POLICY[name]
        ttr = f"{human(x['ttr_median'])} / {human(x['ttr_max'])}" if x["ttr_median"] is not None else "—"
        assert comp[name][1:] == [cfg["severity"], cfg["action"], str(x["tokens_judged"]), str(x["opened"]),
                                  str(x["resolved"]), str(x["open_at_end"]), ttr,
                                  f"{x['succeeded']} / {x['failed']} / {x['skipped']} / {x['halted']}",
                                  f"{x['exemptions_in_force']} / {x['exemptions_used']}"], comp[name]


def test_markdown_csv_html_carry_the_same_figures(history, tmp_path):
    exp = history.model.expect(FROM, TO)
    rows, head_seq, head_hash = chain_head(history.tw)
    md = history.report(*PERIOD, "--format", "md").stdout
    raw_csv = history.report_bytes(*PERIOD, "--format", "csv").decode("utf-8")
    page_text = history.report(*PERIOD, "--format", "html").stdout

    # ---- Markdown
    tables = md_tables(md)
    cov = {r[0]: r for r in tables["Coverage"][0][1:]}
    for c in CLUSTERS:
        x = exp["coverage"][c]
        gap_total = sum((b - a).total_seconds() for a, b in x["gaps"])
        assert cov[c][1:] == ["12h (config)", str(x["ok"]), str(x["failed"]), str(x["suspect"]),
                              short(x["last_successful_poll"]), str(len(x["gaps"])), human(gap_total)], cov[c]
    gaps = tables["Coverage"][1][1:]
    assert sorted(r[0] for r in gaps) == ["prod", "staging"]
    n = exp["counts"]
    hl = exp["highlights"]
    assert (f"Active {n['active']}, expired {n['expired']}, revoked {n['revoked']}, removed {n['removed']}."
            in md)
    assert (f"**{hl['never_expire']} never expire**, **{hl['all_databases']} have a grant on every database "
            f"(`*`)**, **{hl['write']} can write**") in md
    inv_rows = tables["Inventory"][0][1:]
    assert len(inv_rows) == len(exp["inventory"])
    for r, x in zip(inv_rows, exp["inventory"]):
        assert r[1] == x["token_id"] and r[3] == x["status"]
        assert ("never expires" in r[6]) == (x["status"] == "active" and x["tok"]["expires_at"] is None)
    chg = exp["changes"]
    changes_line = (f"Created {chg['created']}, updated {chg['updated']}, revoked {chg['revoked']}, "
                    f"expired {chg['expired']}, removed {chg['removed']} (and {chg['discovered']} discovered "
                    f"by first polls).")
    assert changes_line in md
    assert len(tables["Changes in the period"][0]) - 1 == len(exp["events"])
    check_compliance_rows(tables["Policy compliance"][0], exp)
    assert "**hash chain intact**" in md and f"head seq {head_seq})" in md
    assert f"Head of the chain: seq {head_seq}, hash `{head_hash}`" in md

    # ---- CSV: CRLF rows, sections read back by a CSV reader.
    assert raw_csv.endswith("\r\n") and "\n" not in raw_csv.replace("\r\n", "")
    s = csv_sections(raw_csv)
    assert set(s) == {"report", "coverage", "gaps", "inventory_summary", "inventory", "time_anomalies",
                      "change_counts", "changes", "policies", "resolutions", "halts", "exemptions",
                      "owners_by_team", "owners_by_owner", "series", "integrity", "checkpoint"}
    meta = {r["key"]: r["value"] for r in s["report"]}
    assert meta["period_from"] == iso(FROM) and meta["period_to"] == iso(TO) and meta["schema_version"] == "1"
    assert meta["cluster_filter"] == "" and meta["database"] == str(history.tw.db_path)
    for r in s["coverage"]:
        x = exp["coverage"][r["cluster"]]
        assert (int(r["polls_ok"]), int(r["polls_failed"]), int(r["polls_suspect"]), int(r["gaps"])) == \
            (x["ok"], x["failed"], x["suspect"], len(x["gaps"]))
        assert float(r["poll_interval_seconds"]) == 12 * HOUR and r["poll_interval_source"] == "config"
        near(r["last_successful_poll"], x["last_successful_poll"])
        close_to(float(r["gap_seconds"]), sum((b - a).total_seconds() for a, b in x["gaps"]))
    assert len(s["gaps"]) == 2
    summary = s["inventory_summary"][0]
    assert summary["at"] == iso(TO)
    assert {k: int(summary[k]) for k in n} == n
    assert {k: int(summary[k]) for k in hl} == hl
    assert [(r["cluster"], r["token_id"], r["status"], r["description"]) for r in s["inventory"]] == \
        [(x["cluster"], x["token_id"], x["status"], x["tok"]["description"]) for x in exp["inventory"]]
    for r, x in zip(s["inventory"], exp["inventory"]):
        assert r["permissions"] == " ".join(f"{p['action']}:{p['resource']}" for p in x["tok"]["permissions"])
        assert r["expires_at"] == (iso(x["tok"]["expires_at"]) if x["tok"]["expires_at"] else "")
        assert r["never_expires"] == ("true" if x["status"] == "active" and x["tok"]["expires_at"] is None else "false")
    assert {k: int(v) for k, v in s["change_counts"][0].items()} == exp["changes"]
    assert len(s["changes"]) == len(exp["events"])
    assert sorted((r["token_id"], r["event"]) for r in s["changes"]) == \
        sorted((x["token"], x["event"]) for x in exp["events"])
    for r in s["changes"]:
        if r["event"] == "token_updated":
            assert json.loads(r["before"]) and json.loads(r["after"])
    by_policy = {r["policy"]: r for r in s["policies"]}
    assert list(by_policy) == POLICY_ORDER
    for name, r in by_policy.items():
        x = exp["policies"][name]
        assert (int(r["violations_opened"]), int(r["violations_resolved"]), int(r["open_at_end"]),
                int(r["remediated"]), int(r["actions_planned"]), int(r["actions_succeeded"]),
                int(r["actions_failed"]), int(r["tokens_judged"]), int(r["exemptions_in_force"]),
                int(r["exemptions_used"])) == \
            (x["opened"], x["resolved"], x["open_at_end"], x["ttr_count"], x["planned"], x["succeeded"],
             x["failed"], x["tokens_judged"], x["exemptions_in_force"], x["exemptions_used"]), name
        close_to(float(r["time_to_remediate_median_seconds"]), x["ttr_median"])
        close_to(float(r["time_to_remediate_max_seconds"]), x["ttr_max"])
    assert sorted((r["policy"], r["resolution"], int(r["count"])) for r in s["resolutions"]) == \
        sorted((p, k, v) for p in POLICY_ORDER for k, v in exp["policies"][p]["resolutions"].items())
    assert s["halts"] == [] and len(s["exemptions"]) == 1 and s["exemptions"][0]["token_id"] == P_LEGACY
    assert len(s["series"]) == 60
    last = s["series"][-1]
    assert {k: int(last[k]) for k in n} == n
    assert int(last["open_violations"]) == history.model.open_violations_at(TO, CLUSTERS)
    assert s["integrity"] == [{"ok": "true", "rows_checked": str(rows), "head_seq": str(head_seq),
                               "head_hash": head_hash, "first_bad_seq": "", "problem": ""}]

    # ---- HTML
    page = Page(page_text)
    assert page.errors == []
    text = " ".join(page.all_text().split())
    cards = {}
    for m in re.finditer(r'<div class="card[^"]*"><b>([^<]*)</b>([^<]*)</div>', page_text):
        cards[m.group(2)] = m.group(1)
    open_total = sum(exp["policies"][p]["open_at_end"] for p in POLICY_ORDER)
    assert cards == {"hash chain": "intact", "active tokens": str(n["active"]),
                     "never expire": str(hl["never_expire"]), "grants on *": str(hl["all_databases"]),
                     "violations opened": str(sum(exp["policies"][p]["opened"] for p in POLICY_ORDER)),
                     "open at the end": str(open_total),
                     "failed actions": str(sum(exp["policies"][p]["failed"] for p in POLICY_ORDER)),
                     "coverage gaps": "2"}
    cov = {r[0]: r for r in page.table("coverage")[1:]}
    for c in CLUSTERS:
        x = exp["coverage"][c]
        gap_total = sum((b - a).total_seconds() for a, b in x["gaps"])
        assert cov[c][1:] == ["12h (config)", str(x["ok"]), str(x["failed"]), str(x["suspect"]),
                              short(x["last_successful_poll"]), str(len(x["gaps"])), human(gap_total)], cov[c]
    gap_rows = page.table("coverage", 1)[1:]
    assert [r[0] for r in gap_rows] == ["prod", "staging"]
    assert [r[3] for r in gap_rows] == [human((b - a).total_seconds()) for c in CLUSTERS
                                         for a, b in exp["coverage"][c]["gaps"]]
    assert (f"Active {n['active']}, expired {n['expired']}, revoked {n['revoked']}, removed {n['removed']}. "
            f"Among active tokens: never expires {hl['never_expire']}, * grant {hl['all_databases']}, "
            f"write {hl['write']}.") in text
    inv_rows = page.table("inventory")[1:]
    assert [(r[0], r[1], r[3]) for r in inv_rows] == [(x["cluster"], x["token_id"], x["status"])
                                                      for x in exp["inventory"]]
    for r, x in zip(inv_rows, exp["inventory"]):
        active = x["status"] == "active"
        flags = r[6]
        assert ("never expires" in flags) == (active and x["tok"]["expires_at"] is None)
        assert ("* grant" in flags) == any(p["resource"] == "*" for p in x["tok"]["permissions"])
        assert ("write" in flags) == any(p["action"] == "write" for p in x["tok"]["permissions"])
    assert changes_line in text
    assert len(page.table("changes")) - 1 == len(exp["events"])
    check_compliance_rows(page.table("compliance"), exp)
    assert f"every one of the {rows} events" in text
    assert f"Head of the chain: seq {head_seq}, hash {head_hash}." in text


# --------------------------------------------------------------------------------------------
# Schema.
def schema_validator():
    from jsonschema import Draft202012Validator
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema), schema


def object_schemas(node, path="#"):
    """Every sub-schema that declares properties, with its JSON pointer."""
    if isinstance(node, dict):
        if "properties" in node:
            yield path, node
        for k, v in node.items():
            yield from object_schemas(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from object_schemas(v, f"{path}/{i}")


def test_json_validates_against_the_schema_which_is_strict(history):
    validator, schema = schema_validator()
    reports = [history.report_json(*PERIOD), history.report_json(*PERIOD, "--cluster", "staging"),
               history.report_json("--from", iso(WIN_FROM), "--to", iso(WIN_TO), "--at", iso(MID))]
    for rep in reports:
        errors = sorted(validator.iter_errors(rep), key=lambda e: list(e.path))
        assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    rep = reports[0]
    assert rep["changes"]["events"] and rep["coverage"][0]["gaps"] and rep["compliance"]["exemptions"]

    # Strict where it should be: every object of fixed shape refuses unknown members. The token
    # fields inside change events are the documented exception (a subset of a token).
    loose = [p for p, s in object_schemas(schema) if s.get("additionalProperties") is not False]
    assert loose == ["#/$defs/token_fields"], loose

    def invalid(mutate):
        r = copy.deepcopy(rep)
        mutate(r)
        return not validator.is_valid(r)

    assert invalid(lambda r: r.update(extra=1))
    assert invalid(lambda r: r.pop("integrity"))
    assert invalid(lambda r: r["coverage"][0].update(polls_total=3))
    assert invalid(lambda r: r["coverage"][0]["polls"].update(ok=-1))
    assert invalid(lambda r: r["coverage"][0].update(poll_interval_source="guessed"))
    assert invalid(lambda r: r["inventory"]["tokens"][0].update(status="deleted"))
    assert invalid(lambda r: r["inventory"]["tokens"][0].update(secret="apiv1_x"))
    assert invalid(lambda r: r["inventory"]["tokens"][0]["permissions"].append({"action": "read"}))
    assert invalid(lambda r: r["inventory"].update(at="2026-02-02T12:00:00Z"))  # no milliseconds
    assert invalid(lambda r: r["inventory"]["counts"].update(lost=1))
    assert invalid(lambda r: r["changes"]["events"][0].update(event="token_discovered"))
    assert invalid(lambda r: r["compliance"]["policies"][0]["violations"]["resolutions"].update(forgotten=1))
    assert invalid(lambda r: r["compliance"]["policies"][0]["actions"].pop("failed"))
    assert invalid(lambda r: r["compliance"]["policies"][0].update(tokens_judged=-2))
    assert invalid(lambda r: r["integrity"].update(first_bad_seq=0))
    assert invalid(lambda r: r.update(schema_version=2))
    assert invalid(lambda r: r.update(series=r["series"][:1]))
    assert not invalid(lambda r: r["integrity"].update(ok=False, first_bad_seq=7, problem="row 7 was modified"))


def test_csv_reads_back_with_a_csv_reader(history, tmp_path):
    out = tmp_path / "r.csv"
    history.report(*PERIOD, "-o", str(out))
    raw = out.read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith("section,report\r\nkey,value\r\n")
    # Sections are separated by one empty line; the reader gets every row of every section.
    s = csv_sections(text)
    rep = history.report_json(*PERIOD)
    assert len(s["inventory"]) == len(rep["inventory"]["tokens"])
    assert len(s["changes"]) == len(rep["changes"]["events"])
    assert [r["seq"] for r in s["changes"]] == [str(e["seq"]) for e in rep["changes"]["events"]]
    assert [r["description"] for r in s["changes"]] == [e["description"] for e in rep["changes"]["events"]]
    for r, e in zip(s["changes"], rep["changes"]["events"]):
        assert (json.loads(r["before"]) if r["before"] else None) == e["before"]
        assert (json.loads(r["after"]) if r["after"] else None) == e["after"]
    assert len(s["series"]) == len(rep["series"])
    assert len(s["owners_by_team"]) == len(rep["owners"]["by_team"])
    assert len(s["owners_by_owner"]) == len(rep["owners"]["by_owner"])
    assert text.count("\r\n\r\nsection,") == 16


# --------------------------------------------------------------------------------------------
# A tampered database.
def tampered_copy(history, tmp_path, sql):
    copy_path = tmp_path / "tampered.db"
    src = sqlite3.connect(f"file:{history.tw.db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(copy_path)
    src.backup(dst)
    src.close()
    dst.executescript("DROP TRIGGER IF EXISTS audit_events_no_update; "
                      "DROP TRIGGER IF EXISTS audit_events_no_delete; " + sql)
    dst.commit()
    dst.close()
    return copy_path


def test_tampered_database_is_named_in_the_integrity_section(history, tmp_path):
    bad_seq = history.tw.query("SELECT seq FROM audit_log WHERE event = 'violation_resolved' "
                               "AND detail LIKE '%\"revoked\"%' ORDER BY seq LIMIT 1")[0][0]
    db = tampered_copy(history, tmp_path,
                       f"UPDATE audit_events SET detail = replace(detail, '\"revoked\"', '\"compliant\"') "
                       f"WHERE seq = {bad_seq}")
    proc = history.report(*PERIOD, "--format", "json", db=db)
    assert proc.returncode == 0
    assert proc.stderr.strip() == (f"warning: the audit hash chain is broken (first bad row: seq {bad_seq}); "
                                   "the report's integrity section says so")
    g = json.loads(proc.stdout)["integrity"]
    assert g["ok"] is False and g["first_bad_seq"] == bad_seq and g["append_only_triggers"] is False
    assert str(bad_seq) in g["problem"] and "modified" in g["problem"]
    assert schema_validator()[0].is_valid(json.loads(proc.stdout))
    verify = history.tw.run("verify", "--db", str(db), check=3)
    assert f"seq {bad_seq}" in verify.stderr

    page_text = history.report(*PERIOD, "--format", "html", db=db).stdout
    page = Page(page_text)
    text = " ".join(page.all_text().split())
    assert f"The hash chain is broken." in text and f"First bad row: seq {bad_seq}." in text
    assert "append-only triggers of the audit table are missing" in text
    assert '<div class="card bad"><b>BROKEN</b>hash chain</div>' in page_text
    md = history.report(*PERIOD, "--format", "md", db=db).stdout
    assert "**HASH CHAIN BROKEN**" in md and f"First bad row: seq {bad_seq}." in md
    rows = csv_sections(history.report_bytes(*PERIOD, "--format", "csv", db=db).decode())["integrity"]
    assert rows[0]["ok"] == "false" and rows[0]["first_bad_seq"] == str(bad_seq)

    # A row deleted in the middle: the next one is the first that no longer links.
    (tmp_path / "d").mkdir()
    db2 = tampered_copy(history, tmp_path / "d", "DELETE FROM audit_events WHERE seq = 10;")
    proc = history.report(*PERIOD, "--format", "json", db=db2)
    g = json.loads(proc.stdout)["integrity"]
    assert g["ok"] is False and g["first_bad_seq"] == 11 and "(first bad row: seq 11)" in proc.stderr

    # The last two rows cut off: the chain head (kept apart) names the first missing row.
    head = chain_head(history.tw)[1]
    (tmp_path / "e").mkdir()
    db3 = tampered_copy(history, tmp_path / "e", f"DELETE FROM audit_events WHERE seq > {head - 2};")
    proc = history.report(*PERIOD, "--format", "json", db=db3)
    g = json.loads(proc.stdout)["integrity"]
    assert g["ok"] is False and g["first_bad_seq"] == head - 1 and g["head_seq"] == head - 2
    assert "deleted from the end" in g["problem"] and f"(first bad row: seq {head - 1})" in proc.stderr


# --------------------------------------------------------------------------------------------
# Output, progress, errors.
def test_output_file_is_atomic_and_its_format_follows_the_extension(history, tmp_path):
    for ext, check in [("html", lambda t: t.startswith("<!DOCTYPE html>")),
                       ("htm", lambda t: t.startswith("<!DOCTYPE html>")),
                       ("md", lambda t: t.startswith("# tokenwarden compliance report")),
                       ("csv", lambda t: t.startswith("section,report\r\n")),
                       ("json", lambda t: json.loads(t)["schema_version"] == 1)]:
        out = tmp_path / f"report.{ext}"
        out.write_text("old content")
        inode = out.stat().st_ino
        proc = history.report(*PERIOD, "-o", str(out))
        assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)  # not a terminal: silent
        assert check(out.read_bytes().decode()), ext
        assert out.stat().st_ino != inode, "replaced by rename, not rewritten in place"
        assert out.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"report.{e}" for e in ("html", "htm", "md", "csv", "json"))
    # --format wins over the extension; no extension and no --format: Markdown.
    out = tmp_path / "report.html"
    history.report(*PERIOD, "--format", "json", "-o", str(out))
    assert json.loads(out.read_text())["schema_version"] == 1
    out = tmp_path / "report"
    history.report(*PERIOD, "-o", str(out))
    assert out.read_text().startswith("# tokenwarden compliance report")
    # A failing report leaves the existing file alone and no temporary file behind.
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = history.report(*PERIOD, "--cluster", "nope", "-o", str(tmp_path / "report.md"), check=2)
    assert (tmp_path / "report.md").read_text().startswith("# tokenwarden compliance report")
    proc = history.report(*PERIOD, "-o", str(tmp_path / "missing-dir" / "r.md"), check=1)
    assert "missing-dir/r.md" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def run_with_tty_stderr(history, *args):
    master, slave = pty.openpty()
    env = dict(os.environ, **faketime_env(REPORT_NOW))
    stdout = open(history.root / "tty-report.stdout", "w+b")
    proc = subprocess.Popen([twtest.binary("tokenwarden"), "--config", str(history.tw.config_path), "report", *args],
                            stdout=stdout, stderr=slave, env=env)
    os.close(slave)
    err = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    proc.wait(timeout=30)
    os.close(master)
    stdout.seek(0)
    out = stdout.read()
    stdout.close()
    return proc.returncode, out, err.decode(errors="replace")


def test_progress_only_on_a_terminal(history, tmp_path):
    rc, out, err = run_with_tty_stderr(history, *PERIOD, "--format", "json")
    assert rc == 0 and json.loads(out)["schema_version"] == 1
    assert "report: reading polls" in err and "report: verifying the hash chain" in err
    assert err.endswith("\r\x1b[K"), repr(err[-40:])  # the progress line is cleared at the end
    target = tmp_path / "r.html"
    rc, out, err = run_with_tty_stderr(history, *PERIOD, "-o", str(target))
    assert rc == 0 and out == b"" and f"report: wrote {target}" in err
    # Piped: nothing at all on stderr.
    proc = history.report(*PERIOD, "--format", "json")
    assert proc.stderr == ""


@pytest.mark.parametrize("args, rc, needle", [
    (["--from", "last tuesday"], 2, "--from"),
    (["--to", "2026-13-45"], 2, "--to"),
    (["--at", "soon"], 2, "--at"),
    (["--from", "2026-02-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"], 2, "before"),
    (["--cluster", "nope"], 2, "nope"),
    (["--team", "nope"], 2, 'team "nope"'),
    (["--team", "A"], 2, 'team "A"'),  # exact match
    (["--team", "a", "--owner", "jane.doe"], 2, 'team "a", owner "jane.doe"'),
    (["--owner", "tel", "--cluster", "staging"], 2, "staging"),
])
def test_bad_arguments_give_one_line_and_exit_2(history, args, rc, needle):
    proc = history.report(*args, check=rc)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_unknown_format_is_a_usage_error(history):
    # The option parser's message (every command adds its "Run with --help" hint line).
    proc = history.report("--format", "pdf", check=2)
    assert proc.stdout == "" and proc.stderr.startswith("--format: pdf not in {html,md,markdown,csv,json}")


def test_unreadable_database_gives_one_line_and_exit_1(history, tmp_path):
    missing = tmp_path / "missing.db"
    proc = history.report("--format", "json", db=missing, check=1)
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1 and str(missing) in proc.stderr
    assert not missing.exists(), "a report never creates a database"
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database\n" * 100)
    proc = history.report("--format", "json", db=garbage, check=1)
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1 and str(garbage) in proc.stderr


# --------------------------------------------------------------------------------------------
# Hostile text, and the HTML in a real browser.
HOSTILE = [
    "<script>alert('x')</script>",
    "\"><img src=x onerror=alert(1)>",
    "it's \"quoted\" & <b>bold</b>",
    "ansi \x1b[31mred\x1b[0m and bell \x07",
    "two\nlines\r\nand a tab\t",
    "bidi \u202etxt.exe",
    "</td></tr></table><h1>injected</h1>",
    "| pipe | and `code` **bold** [link](http://evil.example/)",
    "=HYPERLINK(\"http://evil.example/\")",
    "<style>body{background:url(http://evil.example/x.png)}</style>",
    "x" * 100_000,
]
RAW_INVALID = b"raw \xff\xfe bytes \xc3( end"


class RawCluster:
    """A stand-in management API that lists one token whose description is not valid UTF-8."""

    def __init__(self):
        body = (b'[{"id":"99999999-9999-4999-8999-999999999999","description":"' + RAW_INVALID +
                b'","permissions":[{"action":"read","resource":"db"}],"createdAt":"2026-01-01T00:00:00.000Z"}]')

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v0"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-hostile")
    sim = twtest.Sim(root / "sim")
    raw = RawCluster()
    try:
        ids = [sim.create(d, [{"action": "read", "resource": "db"}])["id"] for d in HOSTILE]
        (root / "raw.token").write_text(twtest.MANAGEMENT_TOKEN + "\n")
        raw_block = f'\n[[clusters]]\nname = "raw"\ntype = "clustered"\nurl = "{raw.url}"\n' \
                    f'token_file = "{root / "raw.token"}"\ntimeout = "3s"\n'
        tw = twtest.Tokenwarden(root / "tw", [twtest.clustered_block("hostile", sim, root / "t.token"), raw_block])
        tw.poll(check=0)
        # An update whose before/after are hostile too.
        status, _ = sim.api("PATCH", f"/tokens/{ids[1]}", {"description": HOSTILE[6]})
        assert status == 200
        tw.poll(check=0)
        # A description stored as invalid UTF-8 (the tokens table is outside the hash chain; an
        # older version or another writer could leave such text): the report reads only the log.
        con = sqlite3.connect(tw.db_path)
        con.execute("UPDATE tokens SET description = CAST(? AS TEXT) WHERE token_id = ?", (RAW_INVALID, ids[1]))
        con.commit()
        con.close()
        out = {}
        for fmt in ("html", "md", "csv", "json"):
            path = root / f"hostile.{fmt}"
            tw.run("report", "-o", str(path), check=0)
            out[fmt] = path
        yield {"tw": tw, "ids": ids, "files": out, "root": root}
    finally:
        raw.stop()
        sim.stop()


def test_hostile_text_is_inert_in_every_format(hostile):
    ids, files = hostile["ids"], hostile["files"]
    # Every format is valid UTF-8 whatever the database holds.
    texts = {fmt: p.read_bytes().decode("utf-8") for fmt, p in files.items()}

    rep = json.loads(texts["json"])
    assert schema_validator()[0].is_valid(rep)
    desc = {t["token_id"]: t["description"] for t in rep["inventory"]["tokens"]}
    for tid, d in zip(ids, HOSTILE):
        if tid != ids[1]:
            assert desc[tid] == d  # JSON carries the exact text, the 100 kB one included
    assert desc[ids[1]] == HOSTILE[6]
    assert desc["99999999-9999-4999-8999-999999999999"] == "raw \ufffd\ufffd bytes \ufffd( end"
    updated = [e for e in rep["changes"]["events"] if e["event"] == "token_updated"]
    assert len(updated) == 1 and updated[0]["before"] == {"description": HOSTILE[1]}
    assert updated[0]["after"] == {"description": HOSTILE[6]}
    # The description at the end of the period, from the hash-chained log: the invalid bytes
    # written into the (unchained) tokens table do not reach the report.
    assert updated[0]["description"] == HOSTILE[6]

    # CSV: the exact text back (formulas guarded), the invalid bytes replaced.
    s = csv_sections(texts["csv"])
    by_id = {r["token_id"]: r["description"] for r in s["inventory"]}
    assert by_id[ids[4]] == HOSTILE[4] and by_id[ids[0]] == HOSTILE[0] and by_id[ids[10]] == HOSTILE[10]
    assert by_id[ids[8]] == "'" + HOSTILE[8]
    assert s["changes"][0]["description"] == HOSTILE[6]

    # Markdown: no raw markup, no control characters, every table row keeps its columns.
    md = texts["md"]
    assert "<script" not in md and "<img" not in md and "<h1>" not in md and "<style" not in md
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e\u2028]", md)
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in md
    # ...and every hostile row is there, its description escaped in its own cell.
    md_cell = {
        0: "&lt;script&gt;alert('x')&lt;/script&gt;",
        1: "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;injected&lt;/h1&gt;",  # updated to HOSTILE[6]
        2: "it's \"quoted\" &amp; &lt;b&gt;bold&lt;/b&gt;",
        3: "ansi \\\\x1b\\[31mred\\\\x1b\\[0m and bell \\\\x07",
        7: "\\| pipe \\| and \\`code\\` \\*\\*bold\\*\\* \\[link\\](http://evil.example/)",
        8: "=HYPERLINK(\"http://evil.example/\")",
    }
    for i, cell in md_cell.items():
        assert f"| {ids[i]} | {cell} | " in md, (i, cell)
    for tid in ids:
        assert f"| {tid} | " in md, tid
    for name, tables in md_tables(md).items():
        for t in tables:
            assert len({len(r) for r in t}) == 1, name
    assert "x" * 1000 not in md

    # HTML: nothing active, nothing external, the text shown as text.
    page_text = texts["html"]
    page = Page(page_text)
    assert page.errors == []
    check_inert_html(page, page_text)
    cells = [c for r in page.table("inventory") for c in r]
    for d in (HOSTILE[0], HOSTILE[2], HOSTILE[9], HOSTILE[7]):
        assert d in cells, d
    assert "ansi \\x1b[31mred\\x1b[0m and bell \\x07" in cells
    assert "two\\nlines\\r\\nand a tab\\t" in cells
    assert "bidi \\u202etxt.exe" in cells
    assert "raw \ufffd\ufffd bytes \ufffd( end" in cells
    long_cell = [c for c in cells if c.startswith("xxxxxxxxxx")]
    assert len(long_cell) == 1 and len(long_cell[0]) < 400
    assert [t for t, _ in page.tags].count("h1") == 1
    changes = [c for r in page.table("changes") for c in r]
    assert HOSTILE[6] in changes  # markup shown as text


def check_inert_html(page: Page, page_text: str):
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202e\u2028]", page_text)
    names = [t for t, _ in page.tags]
    assert "script" not in names and "iframe" not in names and "object" not in names and "img" not in names
    assert names.count("style") == 1 and names.count("h1") == 1
    for tag, attrs in page.tags:
        for k, v in attrs:
            assert not k.lower().startswith("on"), (tag, k)
            if k in ("href", "src", "action", "formaction", "srcset", "data", "poster"):
                raise AssertionError(f"external reference {tag} {k}={v}")
            if k == "xmlns":
                assert v == "http://www.w3.org/2000/svg"
    style = page_text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style
    csp = [dict(a) for t, a in page.tags if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, workdir: Path):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            pytest.fail("chromium is not installed (scripts/install-deps installs the test packages)")
        r_child, w_parent = os.pipe()
        r_parent, w_child = os.pipe()

        def fds():
            a, b = os.dup(r_child), os.dup(w_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / "chromium.stderr"
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={workdir / 'profile'}", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", "--window-size=1280,2000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"),
            preexec_fn=fds, close_fds=False)
        os.close(r_child)
        os.close(w_child)
        self.w, self.r = w_parent, r_parent
        self.buf, self.next_id, self.events = b"", 0, []

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.r], [], [], max(left, 0))
            if not r:
                raise AssertionError("chromium did not answer in time: " + self.stderr_path.read_text()[-2000:])
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise AssertionError("chromium exited: " + self.stderr_path.read_text()[-2000:])
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                assert "error" not in m, (method, m["error"])
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open_page(self):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(m, session=session)
        return session

    def visit(self, session, url):
        """Loads url; returns (console messages, requests other than the page itself)."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        time.sleep(0.3)  # late console messages and requests
        self.call("Runtime.evaluate", {"expression": "1"}, session=session)  # drains the pipe
        console, requests = [], []
        for m in self.events:
            method, p = m.get("method"), m.get("params", {})
            if method == "Runtime.consoleAPICalled":
                console.append(("console." + p["type"], [a.get("value") for a in p.get("args", [])]))
            elif method == "Runtime.exceptionThrown":
                console.append(("exception", p["exceptionDetails"].get("text")))
            elif method == "Log.entryAdded":
                console.append((p["entry"]["level"], p["entry"]["text"]))
            elif method == "Network.requestWillBeSent" and p["request"]["url"] != url:
                requests.append(p["request"]["url"])
        return console, requests

    def evaluate(self, session, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        assert "exceptionDetails" not in r, r
        return r["result"]["value"]

    def screenshot(self, session, path: Path):
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        path.write_bytes(data)
        return data

    def close(self):
        try:
            os.write(self.w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.w)
        os.close(self.r)


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_html_in_headless_chromium(history, hostile, tmp_path):
    main_html = tmp_path / "main.html"
    history.report(*PERIOD, "-o", str(main_html))
    check_inert_html(Page(main_html.read_text()), main_html.read_text())
    # A control page proves that the harness sees console messages and requests.
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><body><script>console.error('boom')</script>"
                       "<img src='http://127.0.0.1:1/x.png'></body></html>")
    browser = Chromium(tmp_path / "chromium")
    try:
        session = browser.open_page()
        console, requests = browser.visit(session, control.as_uri())
        assert ("console.error", ["boom"]) in console and requests == ["http://127.0.0.1:1/x.png"]

        for name, path in [("hostile", hostile["files"]["html"]), ("main", main_html)]:
            console, requests = browser.visit(session, path.as_uri())
            assert console == [], (name, console)
            assert requests == [], (name, requests)
            dom = browser.evaluate(session, """(() => {
                const all = [...document.querySelectorAll('*')];
                return {
                  scripts: document.scripts.length,
                  handlers: all.filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                  h1: document.querySelectorAll('h1').length,
                  title: document.title,
                  invRows: document.querySelectorAll('#inventory ~ table')[0].tBodies[0].rows.length,
                  cells: [...document.querySelectorAll('#inventory ~ table')[0].tBodies[0].rows]
                           .map(r => r.cells[2].textContent),
                  width: document.documentElement.scrollWidth,
                };
            })()""")
            assert dom["scripts"] == 0 and dom["handlers"] == 0 and dom["h1"] == 1, (name, dom)
            assert dom["title"].startswith("tokenwarden compliance report")
            assert dom["width"] <= 1280, (name, "a long description widens the page", dom["width"])
            if name == "hostile":
                assert dom["invRows"] == len(HOSTILE) + 1
                assert HOSTILE[0] in dom["cells"] and HOSTILE[2] in dom["cells"]
            else:
                assert dom["invRows"] == len(history.model.expect(FROM, TO)["inventory"])
            shot = tmp_path / f"{name}.png"
            data = browser.screenshot(session, shot)
            w, hgt = png_size(data)
            assert w >= 800 and hgt >= 600 and len(data) > 20_000, (name, w, hgt, len(data))
    finally:
        browser.close()


# --------------------------------------------------------------------------------------------
# More of the history: an outage still going on, a backup without its configuration, --limit.
def test_outage_still_going_on_when_the_report_is_made(history):
    """No poll since slot 56: a report made 2.5 days later shows a gap up to now, not up to --to."""
    now = dt.datetime(2026, 2, 5, 0, 0, tzinfo=UTC)
    to = dt.datetime(2026, 2, 10, 0, 0, tzinfo=UTC)
    rep = history.report_json("--from", iso(FROM), "--to", iso(to), now=now)
    exp = history.model.expect(FROM, to, now=now)
    assert [len(exp["coverage"][c]["gaps"]) for c in CLUSTERS] == [2, 2]
    check_json(rep, exp, history, FROM, to, to, now=now)
    for c in rep["coverage"]:
        last = c["gaps"][-1]
        near(last["from"], at(LAST_SLOT))
        near(last["to"], now)


def test_report_from_a_copy_without_its_configuration(history, tmp_path):
    """--db without --config: intervals are observed, policies come from the history alone."""
    backup = tmp_path / "backup.db"
    src = sqlite3.connect(f"file:{history.tw.db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    env = {k: v for k, v in os.environ.items() if k != "TOKENWARDEN_CONFIG"}
    env.update(faketime_env(REPORT_NOW))
    proc = subprocess.run([twtest.binary("tokenwarden"), "report", "--db", str(backup), *PERIOD, "--format", "json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rep = json.loads(proc.stdout)
    assert schema_validator()[0].is_valid(rep)
    exp = history.model.expect(FROM, TO)
    assert rep["configuration"] is None and rep["database"] == str(backup)
    assert rep["clusters"] == CLUSTERS
    for c in rep["coverage"]:
        x = exp["coverage"][c["cluster"]]
        # The median spacing of the polls is the 12 h of the script.
        assert c["poll_interval_source"] == "observed"
        close_to(c["poll_interval_seconds"], 12 * HOUR, "observed interval", tol=1.0)
        assert c["polls"] == {"ok": x["ok"], "failed": x["failed"], "suspect": x["suspect"]}
        assert len(c["gaps"]) == len(x["gaps"])
    assert [p["policy"] for p in rep["compliance"]["policies"]] == sorted(POLICY_ORDER)
    for p in rep["compliance"]["policies"]:
        x = exp["policies"][p["policy"]]
        assert p["configured"] is False and p["tokens_judged"] is None and p["mode"] is None
        assert (p["severity"], p["action"]) == (POLICY[p["policy"]]["severity"], POLICY[p["policy"]]["action"])
        assert (p["violations"]["opened"], p["violations"]["resolved"], p["violations"]["open_at_end"]) == \
            (x["opened"], x["resolved"], x["open_at_end"])
        assert p["exemptions"] == {"in_force": 0, "used": x["exemptions_used"]}
    assert rep["compliance"]["exemptions"] == []
    assert rep["inventory"]["counts"] == exp["counts"]


def test_markdown_and_html_list_limit(history):
    exp = history.model.expect(FROM, TO)
    md = history.report(*PERIOD, "--format", "md", "--limit", "3").stdout
    tables = md_tables(md)
    assert len(tables["Inventory"][0]) == 1 + 3 and len(tables["Changes in the period"][0]) == 1 + 3
    assert f"{len(exp['inventory']) - 3} more tokens are not listed here" in md
    assert f"{len(exp['events']) - 3} more changes are not listed here" in md
    page = Page(history.report(*PERIOD, "--format", "html", "--limit", "3").stdout)
    assert len(page.table("inventory")) == 1 + 3 and len(page.table("changes")) == 1 + 3
    text = " ".join(page.all_text().split())
    assert f"{len(exp['inventory']) - 3} more tokens are not listed here" in text
    # --limit 0: everything; JSON and CSV always list everything.
    md = history.report(*PERIOD, "--format", "md", "--limit", "0").stdout
    assert len(md_tables(md)["Inventory"][0]) == 1 + len(exp["inventory"]) and "more tokens" not in md
    rep = history.report_json(*PERIOD, "--limit", "3")
    assert len(rep["inventory"]["tokens"]) == len(exp["inventory"]) and len(rep["changes"]["events"]) == len(exp["events"])


# --------------------------------------------------------------------------------------------
# Approvals and safety halts, over a past period.
APPROVAL_POLICIES = """
[[policies]]
name = "approve-first"
kind = "max_lifetime"
max_lifetime = "30d"
action = "revoke"
grace_period = "0s"
require_approval = true
scope = { description = "^appr" }

[[policies]]
name = "no-star-write"
kind = "all_databases_grant"
actions = ["write"]
action = "restrict"
grace_period = "0s"
scope = { description = "^bulk" }
"""


def test_approvals_and_halts_over_a_past_period(tmp_path, sim_factory, tw_factory):
    """Slot 0: one revoke awaits approval, three restricts exceed the safety limit (halt).
    Slot 1.5: the revoke is approved. Slot 2.5: the halt is released. Each report sees the state
    as it was at the end of its own period."""
    sim = sim_factory()
    sim.set_clock(now=iso(T0 - dt.timedelta(hours=1)))
    appr = sim.create("appr-1", [{"action": "read", "resource": "db"}])["id"]
    bulk = [sim.create(f"bulk-{i}", [{"action": "write", "resource": "*"}, {"action": "read", "resource": "db"}],
                       expires_at=iso(T0 + dt.timedelta(days=10)))["id"] for i in range(3)]
    for i in range(4):
        sim.create(f"fine-{i}", [{"action": "read", "resource": "db"}], expires_at=iso(T0 + dt.timedelta(days=10)))
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=APPROVAL_POLICIES,
                    safety="max_actions_per_cycle = 2\nmax_actions_percent = 100\n", poll_interval="12h")

    def poll(k):
        sim.set_clock(now=iso(at(k)))
        tw.run("poll", env=faketime_env(at(k)), check=0)

    poll(0)
    poll(1)
    action_id = json.loads(tw.run("violations", "--open", "--format", "json", env=faketime_env(at(1.5)),
                                  check=0).stdout)
    action_id = [v["action_id"] for v in action_id if v["policy"] == "approve-first"][0]
    tw.run("approve", str(action_id), "--by", "alice", env=faketime_env(at(1.5)), check=0)
    poll(2)  # the approved revoke runs; the halt holds
    tw.run("approve", "--cluster", "c1", "--all", "--by", "bob", env=faketime_env(at(2.5)), check=0)
    poll(3)  # the revoked token is seen; the released restricts run
    poll(4)  # the restricted tokens are seen

    def report(frm, to):
        proc = tw.run("report", "--from", iso(frm), "--to", iso(to), "--format", "json",
                      env=faketime_env(at(5)), check=0)
        rep = json.loads(proc.stdout)
        assert schema_validator()[0].is_valid(rep)
        return {p["policy"]: p for p in rep["compliance"]["policies"]}, rep

    start = T0 - dt.timedelta(hours=1)
    # Up to slot 1.25: the revoke awaits approval, the three restricts are held back.
    pol, rep = report(start, at(1.25))
    appr_p, bulk_p = pol["approve-first"], pol["no-star-write"]
    assert appr_p["actions"] == {"planned": 1, "succeeded": 0, "failed": 0, "skipped": 0, "halted": 0,
                                 "awaiting_approval_at_end": 1}
    assert appr_p["violations"]["open_at_end"] == 1
    assert bulk_p["actions"] == {"planned": 0, "succeeded": 0, "failed": 0, "skipped": 0, "halted": 3,
                                 "awaiting_approval_at_end": 0}
    assert bulk_p["violations"]["opened"] == 3 and bulk_p["violations"]["open_at_end"] == 3
    assert len(rep["compliance"]["halts"]) == 1
    halt = rep["compliance"]["halts"][0]
    assert halt["cluster"] == "c1" and halt["planned"] == 3
    near(halt["at"], at(0))
    assert appr_p["tokens_judged"] == 1 and bulk_p["tokens_judged"] == 3

    # The whole story: everything approved, run and resolved.
    pol, rep = report(start, at(4.25))
    appr_p, bulk_p = pol["approve-first"], pol["no-star-write"]
    assert appr_p["actions"] == {"planned": 1, "succeeded": 1, "failed": 0, "skipped": 0, "halted": 0,
                                 "awaiting_approval_at_end": 0}
    assert appr_p["violations"] == {"opened": 1, "resolved": 1, "open_at_end": 0, "resolutions": {"revoked": 1}}
    close_to(appr_p["time_to_remediate"]["median_seconds"], 36 * HOUR)  # slot 0 to slot 3
    assert bulk_p["actions"] == {"planned": 3, "succeeded": 3, "failed": 0, "skipped": 0, "halted": 3,
                                 "awaiting_approval_at_end": 0}
    assert bulk_p["violations"] == {"opened": 3, "resolved": 3, "open_at_end": 0, "resolutions": {"restricted": 3}}
    close_to(bulk_p["time_to_remediate"]["max_seconds"], 48 * HOUR)  # slot 0 to slot 4
    assert rep["inventory"]["counts"] == {"active": 7, "expired": 0, "revoked": 1, "removed": 0}
    assert rep["inventory"]["highlights"]["all_databases"] == 0 and rep["inventory"]["highlights"]["write"] == 0
    # Only the second half: the halt happened before it, the actions inside it.
    pol, rep = report(at(1.75), at(4.25))
    assert rep["compliance"]["halts"] == [] and pol["no-star-write"]["actions"]["halted"] == 0
    assert pol["no-star-write"]["actions"]["planned"] == 3 and pol["approve-first"]["actions"]["planned"] == 0
    assert pol["approve-first"]["actions"]["succeeded"] == 1  # run at slot 2
    # The Markdown and HTML list the halt.
    md = tw.run("report", "--from", iso(start), "--to", iso(at(1.25)), "--format", "md",
                env=faketime_env(at(5)), check=0).stdout
    assert "### Enforcement halted" in md and f"| {short(at(0))} | c1 | 3 |" in md
