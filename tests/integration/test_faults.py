"""Every fault tokenwarden-sim can inject: the poll is recorded failed or suspect, no token event
is written, the log says what happened in one line, and the daemon keeps going."""
import pytest
import twtest

FAULTS = [
    ({"kind": "status", "status": 401}, "failed", "answered 401"),
    ({"kind": "status", "status": 403}, "failed", "answered 403"),
    ({"kind": "status", "status": 404}, "failed", "answered 404"),
    ({"kind": "status", "status": 500}, "failed", "answered 500"),
    ({"kind": "timeout"}, "failed", "timed out after 3s"),
    ({"kind": "slow", "delay": "8s"}, "failed", "timed out after 3s"),
    ({"kind": "truncate"}, "failed", "connection closed before the response was complete"),
    ({"kind": "malformed"}, "failed", "not valid JSON"),
    ({"kind": "reset"}, "failed", "GET http://"),
    # The tokens the empty list left out are read directly: they still exist.
    ({"kind": "empty"}, "suspect", "still exist"),
]


@pytest.fixture
def polled(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.generate(20, seed=7)
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.poll(check=0)
    assert len(tw.token_events()) == 20
    return sim, tw


@pytest.mark.parametrize("fault,outcome,message", FAULTS, ids=[f[0]["kind"] + str(f[0].get("status", "")) for f in FAULTS])
def test_fault_records_no_token_event(polled, fault, outcome, message):
    sim, tw = polled
    before_tokens = tw.token_events()
    before_rows = tw.query("SELECT COUNT(*) FROM audit_log")[0][0]
    sim.fault(count=1, **fault)
    proc = tw.poll(check=1 if outcome == "failed" else 0)
    last = tw.polls()[-1]
    assert last["outcome"] == outcome
    assert tw.token_events() == before_tokens
    new = tw.events()[before_rows:]
    assert [e["event"] for e in new] == ["poll_failed" if outcome == "failed" else "poll_suspect"]
    # One line in the log says what happened, and the poll row carries the same sentence.
    lines = [l for l in proc.stderr.splitlines() if "poll failed" in l or "suspect" in l]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert message in (last["error"] or "")
    # Afterwards the cluster is healthy again and nothing was lost or doubled.
    tw.poll(check=0)
    assert tw.polls()[-1]["outcome"] == "ok"
    assert tw.token_events() == before_tokens
    tw.run("verify", check=0)


def test_empty_list_confirmed_by_second_poll(polled):
    sim, tw = polled
    # Revoked and expired tokens that a list leaves out are hidden, not gone: only the active
    # ones are recorded removed.
    ids = [r["token_id"] for r in tw.json("tokens", "--status", "active")]
    for t in sim.tokens():
        sim.remove_token(t["id"])
    tw.poll(check=0)
    assert tw.polls()[-1]["outcome"] == "suspect"
    assert all(e != "token_removed" for e, _ in tw.token_events())
    tw.poll(check=0)
    assert tw.polls()[-1]["outcome"] == "ok"
    removed = [t for e, t in tw.token_events() if e == "token_removed"]
    assert sorted(removed) == sorted(ids)


def test_missing_token_file_fails_clearly(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    block = twtest.clustered_block("c1", sim, tmp_path / "t").replace(str(tmp_path / "t"), str(tmp_path / "absent"))
    tw = tw_factory([block])
    proc = tw.poll(check=1)
    assert "cannot read token file" in proc.stderr and str(tmp_path / "absent") in proc.stderr
    assert tw.polls()[-1]["outcome"] == "failed"


def test_daemon_keeps_going_through_faults(polled):
    sim, tw = polled
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 3, what="daemon polls")
    for fault, _, _ in FAULTS:
        if fault["kind"] in ("timeout", "slow"):
            continue  # covered above; each costs the whole timeout
        sim.fault(count=1, **fault)
        n = len(tw.polls())
        twtest.wait_for(lambda: len(tw.polls()) >= n + 2, what=f"polls after {fault}")
    twtest.wait_for(lambda: tw.polls()[-1]["outcome"] == "ok", what="a healthy poll")
    assert tw.daemon.poll() is None, "the daemon exited"
    assert tw.stop_daemon() == 0
    assert len(tw.token_events()) == 20
    outcomes = {p["outcome"] for p in tw.polls()}
    assert outcomes == {"ok", "failed", "suspect"}
    tw.run("verify", check=0)
