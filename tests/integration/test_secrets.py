"""A management token written in the token file never appears in logs, the database or output."""
import glob

import twtest

SECRET = twtest.MANAGEMENT_TOKEN


def test_management_token_never_leaks(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    a = sim.create("one", [{"action": "read", "resource": "db"}])
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "mgmt.token")])
    outputs = []
    for args in (("check-config",), ("check-config", "--print"), ("poll",), ("poll", "--format", "json"),
                 ("tokens",), ("tokens", "--format", "json"), ("history", "--format", "csv"),
                 ("verify",), ("--help",), ("poll", "--dry-run")):
        p = tw.run(*args)
        outputs += [p.stdout, p.stderr]
    # Failures must not leak it either: 401, 500, and a timeout.
    for fault in ({"kind": "status", "status": 401}, {"kind": "status", "status": 500},
                  {"kind": "malformed"}):
        sim.fault(**fault, count=1)
        p = tw.poll()
        outputs += [p.stdout, p.stderr]
    sim.clear_faults()
    # The daemon's own log.
    before = len(tw.polls())
    tw.start_daemon()
    twtest.wait_for(lambda: len(tw.polls()) >= before + 2, what="daemon polls")
    sim.api("DELETE", f"/tokens/{a['id']}")
    twtest.wait_for(lambda: ("token_revoked", a["id"]) in tw.token_events(), what="the revocation")
    assert tw.stop_daemon() == 0
    outputs.append(tw.daemon_log())
    for text in outputs:
        assert SECRET not in text
    for path in glob.glob(str(tw.db_path) + "*"):
        with open(path, "rb") as f:
            assert SECRET.encode() not in f.read(), path
    # The simulator's request log must not carry it either.
    assert SECRET not in str(sim.requests())
