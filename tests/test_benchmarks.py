"""The benchmark scripts run (timings themselves are not asserted: they live in benchmarks/)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"


def test_training_benchmark_smoke():
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--epochs", "1", "--repeats", "1", "--methods", "natural", "trades"])
    assert [r[0] for r in rows] == ["natural", "trades"]
    assert all(ours > 0 and ref > 0 for _, ours, ref in rows)
