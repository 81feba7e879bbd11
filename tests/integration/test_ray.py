"""qa index --ray and a sharded index on Ray Serve: a real 2-node Ray cluster, in a private network
namespace with only loopback.

Ray turns 127.0.0.1 into the host's own address and probes the outside to find
it; in a namespace of its own with only ``lo`` up, the cluster stays on this
machine. The checks themselves run in tests/integration/ray_driver.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]
pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("ray_driver.py")


def namespace_problem() -> str | None:
    """Say why a private network namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a private network namespace needs root (unshare -n)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n is not allowed here: {probe.stderr.strip()}"
    return None


def test_a_two_node_cluster_builds_as_a_local_build_and_serves_two_shards_as_one_index():
    problem = namespace_problem()
    if problem:
        pytest.skip(problem)
    command = f"ip link set lo up && exec {sys.executable} {DRIVER} {ROOT / 'seeds'}"
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", command], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
            proc.wait(timeout=30)
    lines = [line for line in output.splitlines() if "network_util" not in line]
    assert proc.returncode == 0 and "RAY CHECKS PASSED" in output, "\n".join(lines[-40:])
    assert "same manifest, passage ids and vectors as a local build" in output
    assert "only the changed file's" in output
    assert "int8: the same manifest, passage ids and vectors as a local int8 build" in output
    assert "the 2-shard index on 2 nodes answers" in output
    assert "qa serve --ray answers from the shards' deployments as one build does" in output
    assert "answers complete again" in output
    assert "the answer is partial and flagged [1]; strict mode fails it" in output
    assert "deploys the missing shard again" in output
