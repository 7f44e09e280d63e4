"""The CUDA paths, on a real GPU. Every test here skips, with its reason, without CUDA."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import read_report

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

FAST = ("--device", "cuda", "--warmup", "2", "--min-time", "0.2", "--repeat", "2")


def test_cuda_event_timing_matches_a_synchronised_wall_clock():
    from archbench.measure.timing import time_cuda

    a = torch.randn(4096, 4096, device="cuda")
    samples = time_cuda(lambda: a @ a, warmup=3, min_time=0.2, device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ a
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - start) / 20 * 1e3
    median = sorted(samples)[len(samples) // 2]
    assert median == pytest.approx(wall_ms, rel=0.25)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_compare_on_cuda(run_cli, dtype):
    result = run_cli("compare", "vit:tiny", "swin:tiny", "hornet:tiny", "--dtype", dtype,
                     "--batch-size", "1,8", *FAST)
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    env = report["environment"]
    assert env["device_name"] and env["cuda"] and env["cudnn"]
    assert env["tf32_matmul"] is False
    for row in report["rows"]:
        assert row["status"] == "ok", row["error"]
        assert row["memory_measure"].startswith("cuda max_memory_allocated")
        assert row["memory_mb"] > 0 and row["latency_ms_median"] > 0
        assert 0 < row["peak_fraction"] < 1.5
        # other processes on the GPU are looked up (NVML or nvidia-smi); None: no tool
        assert "contended" in row and "cpu_share" not in row
    vit = report["rows"][0]
    assert vit["attention_backend"] in {"flash", "efficient", "cudnn", "math"}


def test_tf32_is_recorded_when_asked(run_cli):
    result = run_cli("compare", "vit:tiny", "--dtype", "tf32", *FAST)
    assert result.exit_code == 0, result.output
    assert read_report(result.run_dir)["environment"]["tf32_matmul"] is True


def test_cuda_graphs_and_train_mode(run_cli):
    result = run_cli("compare", "vit:tiny", "--cuda-graphs", *FAST)
    assert result.exit_code == 0, result.output
    result = run_cli("compare", "swin:tiny", "--mode", "train", "--batch-size", "8", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["train_gmacs"] > 2.5 * row["gmacs"]


def test_compile_on_cuda(run_cli):
    result = run_cli("compare", "vit:tiny", "--compile", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["compile_s"] > 0 and row["status"] == "ok"


def test_max_batch_on_cuda_stays_within_the_budget(run_cli):
    result = run_cli("compare", "vit:tiny", "--max-batch", "--max-memory", "2000", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["max_batch"] >= 8
    assert all(p[2] is None or p[1] == (p[2] <= 2000)
               for p in row["details"]["max_batch_probes"])


def test_out_of_memory_is_a_row_not_a_crash(run_cli):
    _, total = torch.cuda.mem_get_info()
    torch.cuda.set_per_process_memory_fraction(2 * 2**30 / total)  # a 2 GiB card
    try:
        result = run_cli("compare", "vit:base", "--batch-size", "1,1024", *FAST)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert result.exit_code == 1
    rows = read_report(result.run_dir)["rows"]
    assert [r["status"] for r in rows] == ["ok", "oom"]
    assert "out of memory" in rows[1]["error"].lower()
