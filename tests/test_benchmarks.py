"""The benchmark scripts run (timings themselves are not asserted: they live in benchmarks/)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_benchmark_smoke():
    bench = load("bench_training")
    rows = bench.main(["--epochs", "1", "--repeats", "1", "--methods", "natural", "trades",
                       "--no-art"])
    assert [r[0] for r in rows] == ["natural", "trades"]
    assert all(ours > 0 and ref > 0 for _, ours, ref, _ in rows)


@pytest.mark.slow  # bench_training's loop runs fast in test_training_benchmark_smoke
def test_training_benchmark_certified_smoke():
    """IBP and CROWN-IBP against the plain loops; main first checks the reference's bounds,
    loss and gradients against the library's on one batch (AssertionError if not)."""
    bench = load("bench_training")
    rows = bench.main(["--epochs", "1", "--repeats", "1", "--methods", "ibp", "crown-ibp",
                       "--no-art"])
    assert [r[0] for r in rows] == ["ibp", "crown-ibp"]
    assert all(ours > 0 and ref > 0 for _, ours, ref, _ in rows)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_training_benchmark_reference_network_is_smallcnn_in_textbook_order(shape):
    """The reference loops' network: SmallCNN's weights under the same seed, the same function."""
    import torch

    from sklearn_robust.estimators import SmallCNN

    bench = load("bench_training")
    torch.manual_seed(3)
    ours = SmallCNN(shape, 10)
    torch.manual_seed(3)
    textbook = bench.TextbookCNN(shape, 10)
    ours_state, textbook_state = ours.state_dict(), textbook.state_dict()
    assert list(ours_state) == list(textbook_state)
    assert all(torch.equal(ours_state[k], textbook_state[k]) for k in ours_state)
    kinds = [type(m).__name__ for m in textbook.features]
    assert all(kinds[i - 1] == "ReLU" for i, k in enumerate(kinds) if k == "MaxPool2d")
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), textbook(x), rtol=1e-5, atol=1e-6)


def test_attack_benchmark_smoke():
    rows = load("bench_attacks").main(["--quick", "--repeats", "1", "--workload", "digits",
                                       "--attacks", "pgd", "apgd-ce"])
    assert [r[1] for r in rows] == ["pgd", "apgd-ce"]
    for _, _, t_ours, t_ref, s_ours, s_ref in rows:
        assert t_ours > 0 and t_ref > 0 and 0 <= s_ours <= 1 and 0 <= s_ref <= 1


def test_autoattack_benchmark_on_real_mnist_matches_torchattacks():
    rows = load("bench_autoattack").main(["--data", "mnist", "--n", "20", "--norm", "linf",
                                          "--model", "natural", "--threads", "1"])
    assert [r["row"] for r in rows] == ["ours", "ta-standard", "ta-shipped"]
    ours, ta = rows[0]["robust"], rows[1]["robust"]
    assert all(r["model"] == "mnist/mlp/natural" and 0 <= r["robust"] <= 1 for r in rows)
    assert abs(ours - ta) <= 0.05  # one point of 20


def test_autoattack_benchmark_runs_the_original_from_a_checkout(tmp_path, monkeypatch):
    """``--original PATH`` imports ``autoattack`` from PATH and times its stages; a
    stand-in package with the original's interface (no checkout in CI) returns the
    points unchanged, so its robust accuracy is the clean accuracy."""
    package = tmp_path / "autoattack"
    package.mkdir()
    (package / "__init__.py").write_text(
        "class _Stage:\n"
        "    def perturb(self, x, y):\n"
        "        return x\n"
        "class AutoAttack:\n"
        "    def __init__(self, model, norm, eps, version, seed, verbose, device):\n"
        "        assert version == 'standard' and device == 'cpu'\n"
        "        self.apgd = self.apgd_targeted = self.fab = self.square = _Stage()\n"
        "    def run_standard_evaluation(self, x, y, bs):\n"
        "        return self.apgd.perturb(x, y)\n")
    monkeypatch.delitem(sys.modules, "autoattack", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    bench = load("bench_autoattack")
    rows = bench.main(["--n", "20", "--threads", "1", "--original", str(tmp_path),
                       "--skip-reference", "--stages"])
    assert [r["row"] for r in rows] == ["ours", "original"]
    _, X, _, y = bench.load("digits")
    model = bench.train("natural")
    with torch.no_grad():
        clean = float((model(X[:20]).argmax(dim=1) == y[:20]).float().mean())
    assert rows[1]["robust"] == pytest.approx(clean)
    assert rows[0]["robust"] <= clean


@pytest.mark.slow  # four measured child processes; test_separation_benchmark_child is fast
def test_separation_benchmark_smoke():
    rows = load("bench_separation").main(["--quick"])
    assert [r["n"] for r in rows] == [600, 1500]
    assert all(r["exact"] for r in rows)  # identical per-point distances to sklearn's
    assert all(r["ours_peak"] > 0 and r["ref_peak"] > 0 for r in rows)


def test_separation_benchmark_child(tmp_path, capsys):
    """One measured run of each side, in this process: the same per-point distances."""
    bench = load("bench_separation")
    X, y = load("_workloads").mnist_like(300, seed=0)
    data, labels = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(data, X.reshape(len(X), -1))
    np.save(labels, y)
    distances = {}
    for side in ("ours", "ref"):
        out = tmp_path / f"{side}.npy"
        bench.main(["--child", side, "--data", str(data), "--labels", str(labels),
                    "--out", str(out)])
        distances[side] = np.load(out)
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert '"queries": 300' in line and '"peak"' in line
    assert distances["ours"].shape == (300,) and (distances["ours"] > 0).all()
    np.testing.assert_array_equal(distances["ours"], distances["ref"])


def test_scaling_benchmark_smoke():
    results = load("bench_scaling").main(["--quick"])
    assert len(results) == 3
    assert all(np.isfinite(r["exponent"]) for r in results)


def test_scaling_exponent_of_a_known_power_law():
    bench = load("bench_scaling")
    sizes = [10, 20, 40, 80]
    assert bench.exponent(sizes, [3 * s**1.5 for s in sizes]) == pytest.approx(1.5)


def test_workloads_are_image_like():
    workloads = load("_workloads")
    X, y = workloads.mnist_like(50, seed=0)
    assert X.shape == (50, 1, 28, 28) and X.dtype == np.float32
    assert X.min() >= 0 and X.max() <= 1 and set(np.unique(y)) <= set(range(10))
    assert np.allclose(X * 255, np.round(X * 255), atol=1e-4)  # 8-bit levels
    X2, _ = workloads.mnist_like(50, seed=0)
    np.testing.assert_array_equal(X, X2)
    Xd, yd = workloads.digits_like(30)
    assert Xd.shape == (30, 1, 8, 8) and len(yd) == 30


def test_run_all_runs_each_script_and_stops_at_a_failure(tmp_path, monkeypatch, capsys):
    run_all = load("run_all")
    (tmp_path / "bench_ok.py").write_text("print('measured 1.0 s')\n")
    (tmp_path / "bench_fails.py").write_text("import sys\nprint('half')\nsys.exit(3)\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "QUICK", [["bench_ok.py", "--quick"], ["bench_fails.py"]])
    assert run_all.main(["--quick", "--only", "bench_ok"]) == 0
    out = capsys.readouterr().out
    assert "$ python benchmarks/bench_ok.py --quick" in out and "measured 1.0 s" in out
    assert "load before" in out and "load after" in out and "bench_fails" not in out
    log = tmp_path / "run.log"
    assert run_all.main(["--quick", "--log", str(log)]) == 3
    out = capsys.readouterr().out
    assert "# FAILED with exit code 3" in out and out.rstrip().endswith("3")
    assert log.read_text() == out  # the log gets every line printed


@pytest.mark.slow  # a real benchmark in a child process; the runner is tested just above
def test_run_all_runs_a_quick_benchmark(capsys):
    run_all = load("run_all")
    assert run_all.main(["--quick", "--only", "bench_scaling"]) == 0
    out = capsys.readouterr().out
    assert "$ python benchmarks/bench_scaling.py --quick" in out and "load before" in out


def test_attack_benchmark_runs_on_real_mnist():
    rows = load("bench_attacks").main(["--quick", "--repeats", "1", "--workload", "mnist",
                                       "--attacks", "pgd"])
    ((workload, kind, t_ours, t_ref, s_ours, s_ref),) = rows
    assert (workload, kind) == ("mnist", "pgd") and t_ours > 0 and t_ref > 0
    assert 0 <= s_ours <= 1 and 0 <= s_ref <= 1


def test_real_mnist_workload_is_the_fixed_stratified_split():
    workloads = load("_workloads")
    X_train, X_test, y_train, y_test = workloads.real_mnist(seed=0)
    assert X_train.shape == (4000, 1, 28, 28) and X_test.shape == (1000, 1, 28, 28)
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10


@pytest.mark.slow
def test_verification_benchmark_smoke():
    result = load("bench_verify").main(["--quick"])
    for row in result["exact"]:
        assert row["unsound"] == 0 and row["auto_missed"] == 0
        assert row["exact"] <= row["auto"] <= row["pgd20"] <= row["clean"]
    for row in result["bounds"]:
        assert row["ibp"] <= row["crown"] <= row["alpha20"]


def test_verification_against_art_smoke():
    rows = load("bench_verify_art").main(["--quick", "--no-attack"])
    assert rows
    for row in rows:
        assert row["crown"] >= row["deepz"]  # the target, on its own networks



# ------------------------------------------------------------------ gpu_check.py
GPU_CHECK_KEYS = {
    "device", "torch", "cuda", "cudnn_benchmark", "module", "image_size", "batch_size",
    "timed_batches", "precision", "channels_last", "attack_steps",
    "estimator_images_per_s", "plain_images_per_s", "estimator_to_plain_ratio",
    "estimator_peak_memory_gib", "plain_peak_memory_gib", "seconds_per_cifar10_epoch",
    "auto_version", "auto_points", "auto_points_per_s", "auto_robust_accuracy",
}
TINY = ["--allow-cpu", "--image-size", "8", "--batch-size", "4", "--batches", "2",
        "--attack-steps", "2", "--eval-points", "4"]


@pytest.mark.parametrize("options", [
    ["--module", "wideresnet", "--depth", "10", "--widen-factor", "1"],
    # PreAct ResNet-18, the default network; AutoAttack's full budget would take minutes
    # on the points this network cannot be moved from (zero gradients): the fast preset
    ["--precision", "bf16", "--channels-last", "--auto-version", "fast", "--eval-points", "2"],
], ids=["wrn-10-1", "preactresnet18-bf16-channels-last"])
@pytest.mark.filterwarnings("ignore:APGD-CE. the input gradient is exactly zero:UserWarning")
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU route of a CUDA-less machine")
def test_gpu_check_runs_on_the_cpu_at_tiny_sizes(tmp_path, capsys, options):
    """The hidden --allow-cpu route: both sides train, AutoAttack runs, the JSON is whole."""
    import json

    out = tmp_path / "gpu.json"
    result = load("gpu_check").main([*TINY, *options, "--json", str(out)])
    assert json.loads(out.read_text()) == result == json.loads(capsys.readouterr().out)
    assert GPU_CHECK_KEYS <= set(result)
    assert result["device"].startswith("cpu") and result["estimator_peak_memory_gib"] is None
    assert result["estimator_images_per_s"] > 0 and result["plain_images_per_s"] > 0
    assert result["estimator_to_plain_ratio"] == pytest.approx(
        result["estimator_images_per_s"] / result["plain_images_per_s"])
    assert result["seconds_per_cifar10_epoch"] == pytest.approx(
        50_000 / result["estimator_images_per_s"])
    assert result["auto_points"] == (2 if "fast" in options else 4)
    assert result["auto_points_per_s"] > 0
    assert 0 <= result["auto_robust_accuracy"] <= 1
    assert (result["precision"], result["channels_last"]) == (
        ("bf16", True) if "bf16" in options else ("fp32", False))
    assert result["module"] == ("wideresnet" if "wideresnet" in options else "preactresnet18")


def test_gpu_check_without_cuda_exits_2_with_one_line(tmp_path):
    """``make gpu-check`` on a machine without CUDA: status 2, one line, nothing written
    (CUDA_VISIBLE_DEVICES hides any GPU, so this holds on a CUDA machine too)."""
    import os
    import subprocess

    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py"), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], lines
    assert not out.exists()
