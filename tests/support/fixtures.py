"""pytest fixtures shared by the integration and contract suites (imported by their conftest)."""
import pytest
import twtest


@pytest.fixture
def sim(tmp_path):
    s = twtest.Sim(tmp_path / "sim")
    yield s
    s.stop()


@pytest.fixture
def sim_factory(tmp_path):
    sims = []

    def make(name="sim", **kwargs):
        s = twtest.Sim(tmp_path / name, **kwargs)
        sims.append(s)
        return s

    yield make
    for s in sims:
        s.stop()


@pytest.fixture
def tw_factory(tmp_path):
    instances = []

    def make(clusters, extra="", name="tw", **kwargs):
        t = twtest.Tokenwarden(tmp_path / name, clusters, extra, **kwargs)
        instances.append(t)
        return t

    yield make
    for t in instances:
        t.kill_daemon()


from etcd import etcd_cluster, etcd_tls_cluster  # noqa: E402,F401  (a real 3-member etcd, tests/support/etcd.py)
