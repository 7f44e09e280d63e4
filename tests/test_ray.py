"""The Ray executor against a real local Ray instance (2 CPUs), started once per session
with ``ray start --head`` and joined with ``--ray-address``, as a user joins a cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_report

pytest.importorskip("ray")
pytestmark = pytest.mark.ray

TESTS = Path(__file__).parent
FAST = ("--warmup", "0", "--min-time", "0.05", "--repeat", "2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory):
    """A real Ray head on this machine, 2 CPUs; its workers can import the test plugins."""
    port = _free_port()
    # RAY_AUTH_MODE: `ray start` turns on token authentication by default (Ray >= 2.5x),
    # which a test cluster on loopback does not need (docs/cluster.md says how to join one)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
           "RAY_AUTH_MODE": "disabled"}
    ray = Path(sys.executable).with_name("ray")
    # --block: the head lives as long as this process, and stopping it stops only the Ray
    # processes it started (not other Ray instances on the machine, as `ray stop` would)
    head = subprocess.Popen([str(ray), "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, head)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        head.wait(timeout=60)


def _wait_for(port: int, head: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(2)  # the port answers before the raylet has registered
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Ray head did not answer on port {port} in {timeout:.0f} s")


def _ray(run_cli, address, *args):
    return run_cli(*args, "--executor", "ray", "--ray-address", address)


def test_counts_from_ray_equal_the_local_executor(run_cli, ray_address):
    targets = ("vit:tiny", "swin:tiny", "hornet:tiny", "--no-latency")
    local = run_cli("compare", *targets)
    remote = _ray(run_cli, ray_address, "compare", *targets)
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    columns = ["model", "params_m", "gmacs", "mixer", "mixer_gmacs", "mixer_gmacs_formula",
               "mixer_gmacs_as_msa", "mixer_msa_saving"]
    ours = pd.read_csv(local.run_dir / "report.csv")[columns]
    theirs = pd.read_csv(remote.run_dir / "report.csv")[columns]
    pd.testing.assert_frame_equal(ours, theirs)
    rows = read_report(remote.run_dir)["rows"]
    assert {r["details"]["where"]["pid"] for r in rows} != {os.getpid()}  # ran elsewhere


def test_a_sweep_with_latency_streams_rows_that_say_where_they_ran(run_cli, ray_address):
    result = _ray(run_cli, ray_address, "sweep", "toy", "toy[width=4]", "--img-sizes",
                  "32,64", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    assert len(report["rows"]) == 4 and all(r["status"] == "ok" for r in report["rows"])
    for row in report["rows"]:
        where = row["details"]["where"]
        assert where["node"] and where["host"] and where["pid"] and where["device_name"]
        assert where["threads"] == 1  # a CPU group holds the 2 CPUs and times on 1
    assert report["environment"]["torch"]  # the worker's environment
    ratios = next(t for k, t in report["tables"].items() if "ratios" in k)
    assert [r["input"] for r in ratios] == ["32x32", "64x64"]  # inside each group


def test_a_worker_that_dies_costs_its_task_only(run_cli, ray_address):
    result = _ray(run_cli, ray_address, "compare", "toy", "toy:dies", "toy[width=4]",
                  "--no-latency")
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert rows["toy:tiny"]["status"] == "ok" and rows["toy:tiny[width=4]"]["status"] == "ok"
    assert rows["toy:dies"]["status"] == "error"
    assert rows["toy:dies"]["error"].startswith("worker died: ")


def test_a_plugin_missing_on_the_workers_is_named(run_cli, ray_address, monkeypatch,
                                                   tmp_path):
    (tmp_path / "archbench_driveronly.py").write_text(
        "from archbench import Architecture, Variant, hookimpl\n\n"
        "@hookimpl\ndef archbench_architectures():\n"
        "    return [Architecture(name='only', family='F', paper='P', input_kind='image',\n"
        "            variants={'a': Variant(config={}, img_size=32)}, default_variant='a')]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin,archbench_driveronly")
    result = _ray(run_cli, ray_address, "compare", "only", "toy", "--no-latency")
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert rows["toy:tiny"]["status"] == "ok"
    error = rows["only:a"]["error"]
    assert "'archbench_driveronly' is not installed on the Ray worker" in error
    assert "runtime_env" in error and "Traceback" not in error


def test_an_unreachable_address_is_one_line_and_exit_2_within_seconds(run_cli):
    start = time.perf_counter()
    result = run_cli("compare", "toy", "--executor", "ray", "--ray-address", "127.0.0.1:1")
    assert result.exit_code == 2
    assert "no Ray cluster answers at 127.0.0.1:1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.run_dir is None
    assert time.perf_counter() - start < 10


def test_without_ray_the_executor_is_refused_with_the_install_command(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = run_cli("compare", "toy", "--executor", "ray")
    assert result.exit_code == 2 and "pip install 'archbench[ray]'" in result.stderr
    assert result.run_dir is None


def test_a_timed_group_is_counted_in_parallel_first_and_a_failed_count_costs_its_model(
        run_cli, ray_address):
    result = _ray(run_cli, ray_address, "compare", "toy", "toy:dies", "toy[width=4]", *FAST)
    assert result.exit_code == 1, result.output
    rows = {r["model"]: r for r in read_report(result.run_dir)["rows"]}
    assert rows["toy:dies"]["status"] == "error" and rows["toy:dies"]["batch_size"] == 1
    assert rows["toy:dies"]["error"].startswith("worker died: ")
    for name in ("toy:tiny", "toy:tiny[width=4]"):
        assert rows[name]["status"] == "ok" and rows[name]["latency_ms_median"] > 0
        assert rows[name]["gmacs"] > 0  # counted by its own task, timed by the group's
    assert "counted toy:tiny (32x32)" in result.stderr
