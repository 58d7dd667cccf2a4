"""`tokenwarden run`: schedule, concurrency bound, clean shutdown on SIGTERM/SIGINT."""
import signal
import time

import twtest


def test_run_records_start_and_stop(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    tok = sim.create("one", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 2, what="two polls")
    sim.api("DELETE", f"/tokens/{tok['id']}")
    twtest.wait_for(lambda: ("token_revoked", tok["id"]) in tw.token_events(), what="the revocation")
    assert tw.stop_daemon(signal.SIGTERM) == 0
    kinds = [e["event"] for e in tw.events()]
    assert kinds[0] == "daemon_started" and kinds[1] == "config_applied"
    assert kinds[-1] == "daemon_stopped"
    assert kinds.count("daemon_started") == 1 and kinds.count("daemon_stopped") == 1
    # A restart with the same configuration records no new config_applied.
    tw.start_daemon()
    twtest.wait_for(lambda: tw.events()[-1]["event"] != "daemon_stopped", what="restart")
    assert tw.stop_daemon(signal.SIGINT) == 0
    kinds = [e["event"] for e in tw.events()]
    assert kinds.count("config_applied") == 1 and kinds.count("daemon_stopped") == 2
    log = tw.daemon_log()
    assert "started" in log and "stopped" in log


def test_polls_follow_the_planned_schedule(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    sim.create("one", [])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")])
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= 5, timeout=30, what="five polls")
    assert tw.stop_daemon() == 0
    starts = [r[0] for r in tw.query("SELECT started_at FROM polls ORDER BY id")]
    from datetime import datetime
    ts = [datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for s in starts]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    # poll_interval = 1s, jitter 0: each start is about one second after the previous one.
    assert all(0.8 <= g <= 1.5 for g in gaps), gaps


def test_stuck_cluster_does_not_stop_others_and_sigterm_is_prompt(tmp_path, sim_factory, tw_factory):
    healthy = sim_factory("healthy")
    stuck = sim_factory("stuck")
    healthy.create("h", [])
    stuck.create("s", [])
    stuck_block = twtest.clustered_block("stuck", stuck, tmp_path / "t2").replace('timeout = "3s"', 'timeout = "60s"')
    tw = tw_factory([twtest.clustered_block("healthy", healthy, tmp_path / "t1"), stuck_block])
    stuck.fault(kind="timeout")
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls("healthy")) >= 4, timeout=30, what="healthy polls")
    assert tw.polls("stuck") == []  # its first poll is still waiting
    t0 = time.monotonic()
    assert tw.stop_daemon() == 0
    assert time.monotonic() - t0 < 10
    kinds = [e["event"] for e in tw.events()]
    assert kinds[-1] == "daemon_stopped"
    # The abandoned poll left nothing behind.
    assert tw.polls("stuck") == []
    tw.run("verify", check=0)


def test_invalid_config_exits_2(tmp_path, tw_factory):
    tw = tw_factory([], extra="[bogus]\n")
    proc = tw.run("run", check=2)
    assert "bogus: unknown key" in proc.stderr
