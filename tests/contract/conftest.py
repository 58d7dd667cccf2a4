import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import pytest  # noqa: E402
import twtest  # noqa: E402


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
