"""HTTP as real servers use it (issue 10), through tokenwarden-sim: redirects are followed within
the configured origin only — a second simulator stands for another origin and its request log
shows that nothing, least of all the management token, reached it — and a 429/503 with
Retry-After fails the poll with a one-line reason and holds back the next poll and the next
attempt of an action for at least that long."""
import datetime as dt
import email.utils
import re
import time
from pathlib import Path

import pytest
import twtest

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
ACCOUNT = "11111111-1111-4111-8111-111111111111"
CLUSTER = "33333333-3333-4333-8333-333333333333"
# The Clustered simulator also serves the Dedicated-style path: a real place to redirect to.
MOVED = f"/api/v0/accounts/{ACCOUNT}/clusters/{CLUSTER}/tokens"
NEVER_EXPIRES = """
[[policies]]
name = "must-expire"
kind = "max_lifetime"
max_lifetime = "30d"
action = "revoke"
grace_period = "0s"
severity = "critical"
"""
NO_LIMITS = "max_actions_per_cycle = 100\nmax_actions_percent = 100\n"


def later(seconds):
    """Environment that runs tokenwarden `seconds` in the future (libfaketime)."""
    assert Path(FAKETIME_LIB).exists(), "libfaketime is missing (Debian package faketime)"
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"+{seconds}s",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def make(tmp_path, sim_factory, tw_factory, policies="", **kwargs):
    sim = sim_factory()
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], extra=policies,
                    safety=NO_LIMITS, **kwargs)
    return sim, tw


def origin(sim):
    return f"http://127.0.0.1:{sim.port}"


def parse_ts(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def one_poll_failed_line(proc):
    lines = [l for l in proc.stderr.splitlines() if "poll failed" in l]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- redirects --------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("absolute", [False, True], ids=["path", "absolute-url"])
def test_same_origin_redirect_is_followed(status, absolute, tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    sim.generate(5, seed=3)
    location = (origin(sim) if absolute else "") + MOVED
    sim.fault(kind="redirect", status=status, location=location, method="GET",
              path="/api/v0/tokens$")
    tw.poll(check=0)
    assert tw.polls()[-1]["outcome"] == "ok"
    assert len(tw.token_events()) == 5
    log = [(r["method"], r["path"], r["status"], r["auth"]) for r in sim.requests()]
    assert log == [("GET", "/api/v0/tokens", status, "ok"), ("GET", MOVED, 200, "ok")]


def test_a_revocation_redirected_with_307_is_repeated_as_a_delete(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    t = sim.create("no expiry", [])
    sim.fault(kind="redirect", status=307, location=f"{MOVED}/{t['id']}", method="DELETE",
              path="/api/v0/tokens/")
    tw.poll(check=0)
    deletes = [(r["path"], r["status"]) for r in sim.requests() if r["method"] == "DELETE"]
    assert deletes == [(f"/api/v0/tokens/{t['id']}", 307), (f"{MOVED}/{t['id']}", 204)]
    assert [e["detail"]["outcome"] for e in tw.events() if e["event"] == "action_succeeded"] == ["revoked"]


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_revocation_is_never_turned_into_a_get(status, tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    t = sim.create("no expiry", [])
    sim.fault(kind="redirect", status=status, location=f"{MOVED}/{t['id']}", method="DELETE")
    tw.poll(check=0)
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert len(failed) == 1
    assert (f"answered {status}" in failed[0]["detail"]["error"]
            and "only a 307 or 308 redirect repeats a DELETE" in failed[0]["detail"]["error"])
    assert not [r for r in sim.requests() if r["path"] == f"{MOVED}/{t['id']}"]
    assert "revokedAt" not in [x for x in sim.tokens() if x["id"] == t["id"]][0]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_another_origin_is_refused_and_never_given_the_token(status, tmp_path, sim_factory,
                                                              tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    other = sim_factory("other")  # accepts the same management token: a leak would log auth "ok"
    sim.generate(3, seed=1)
    sim.fault(kind="redirect", status=status, location=other.base_url + "/tokens", method="GET")
    proc = tw.poll(check=1)
    line = one_poll_failed_line(proc)
    poll = tw.polls()[-1]
    assert poll["outcome"] == "failed"
    for text in (line, poll["error"]):
        assert f"GET {sim.base_url}/tokens answered {status}" in text
        assert (f"redirecting to another origin, {origin(other)}; refused so that the management "
                f"token is not sent there (redirects are followed only within {origin(sim)})") in text
    assert other.requests() == [], "a request reached the other origin"
    assert [r["path"] for r in sim.requests()] == ["/api/v0/tokens"]
    assert twtest.MANAGEMENT_TOKEN not in proc.stderr + proc.stdout + poll["error"]
    assert tw.token_events() == []


def test_a_revocation_redirected_to_another_origin_is_refused(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    other = sim_factory("other")
    t = sim.create("no expiry", [])
    sim.fault(kind="redirect", status=307, location=f"{other.base_url}/tokens/{t['id']}",
              method="DELETE")
    tw.poll(check=0)
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert len(failed) == 1 and "refused so that the management token is not sent there" in \
        failed[0]["detail"]["error"]
    assert other.requests() == []


def test_http_to_https_of_the_same_host_and_port_is_another_origin(tmp_path, sim_factory,
                                                                   tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    https = "https://127.0.0.1:" + str(sim.port)
    sim.fault(kind="redirect", status=301, location=https + "/api/v0/tokens", method="GET")
    proc = tw.poll(check=1)
    assert f"redirecting to another origin, {https}; refused" in one_poll_failed_line(proc)
    assert len(sim.requests()) == 1  # nothing was sent on to the https origin


def test_a_redirect_loop_stops_after_three_hops(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    sim.fault(kind="redirect", status=302, location="/api/v0/tokens", method="GET")
    proc = tw.poll(check=1)
    assert "answered 302 Found after 3 redirects" in one_poll_failed_line(proc)
    assert len(sim.requests()) == 4


# -- Retry-After ------------------------------------------------------------------------------

def test_429_fails_the_poll_and_the_next_poll_waits(tmp_path, sim_factory, tw_factory):
    listen = f"127.0.0.1:{twtest.free_port()}"
    sim, tw = make(tmp_path, sim_factory, tw_factory, listen=listen, poll_interval="1s")
    sim.generate(3, seed=2)
    sim.fault(kind="status", status=429, retry_after=3, count=1, method="GET",
              path="/api/v0/tokens$")
    tw.start_daemon()
    lists = lambda: [r for r in sim.requests() if r["path"] == "/api/v0/tokens"]
    twtest.wait_for(lambda: len(lists()) >= 3, timeout=20, what="three list requests")
    first, second, third = lists()[:3]
    assert first["status"] == 429 and second["status"] == 200
    waited = (parse_ts(second["time"]) - parse_ts(first["time"])).total_seconds()
    assert waited >= 3.0, f"the next poll came {waited}s after a Retry-After of 3s"
    # Then the interval (1s) applies again.
    assert (parse_ts(third["time"]) - parse_ts(second["time"])).total_seconds() < 2.9
    failed = [p for p in tw.polls() if p["outcome"] == "failed"]
    assert len(failed) == 1
    error = failed[0]["error"]
    assert "\n" not in error
    assert (f"GET {sim.base_url}/tokens answered 429 Too Many Requests (too many requests); "
            "the server asks to retry after 3s") in error
    lines = [l for l in tw.daemon_log().splitlines() if "poll failed" in l]
    assert len(lines) == 1 and "retry after 3s" in lines[0], tw.daemon_log()
    # The poll outcome is the SPEC's "failed"; no new label value.
    m = tw.metrics()
    assert twtest.metric(m, "tokenwarden_polls_total", cluster="c1", outcome="failed") == 1
    assert tw.stop_daemon() == 0


def test_503_with_an_http_date(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory)
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    sim.fault(kind="status", status=503, retry_after=when, count=1)
    proc = tw.poll(check=1)
    line = one_poll_failed_line(proc)
    assert "answered 503 Service Unavailable" in line
    wait = int(re.search(r"the server asks to retry after (\d+)s", line).group(1))
    assert 110 <= wait <= 121, line
    assert re.search(r"the server asks to retry after \d+s", tw.polls()[-1]["error"])


def test_an_action_retry_waits_for_retry_after(tmp_path, sim_factory, tw_factory):
    sim, tw = make(tmp_path, sim_factory, tw_factory, NEVER_EXPIRES)
    t = sim.create("no expiry", [])
    sim.fault(kind="status", status=503, retry_after=600, count=1, method="DELETE")
    tw.poll(check=0)
    deletes = lambda: [r for r in sim.requests() if r["method"] == "DELETE"]
    assert len(deletes()) == 1
    # Told to wait, nothing more is sent: no read-back after the refused DELETE.
    assert sim.requests()[-1]["method"] == "DELETE"
    failed = [e for e in tw.events() if e["event"] == "action_failed"]
    assert len(failed) == 1
    detail = failed[0]["detail"]
    assert "answered 503 Service Unavailable" in detail["error"]
    assert "the server asks to retry after 600s" in detail["error"]
    recorded = tw.query("SELECT recorded_at FROM audit_log WHERE event = 'action_failed'")[0][0]
    assert (parse_ts(detail["retry_at"]) - parse_ts(recorded)).total_seconds() == pytest.approx(600, abs=1)
    # Two minutes on: the back-off (30 s) alone would retry; the cluster's wait holds it back.
    tw.run("poll", env=later(120), check=0)
    assert len(deletes()) == 1
    # Past the wait: retried, and it succeeds.
    tw.run("poll", env=later(610), check=0)
    assert len(deletes()) == 2
    assert [e["event"] for e in tw.events() if e["event"].startswith("action_")][-1] == "action_succeeded"
    assert "revokedAt" in [x for x in sim.tokens() if x["id"] == t["id"]][0]
