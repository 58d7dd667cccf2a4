import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from fixtures import etcd_cluster, etcd_tls_cluster, sim, sim_factory, tw_factory  # noqa: E402,F401
