"""The example scripts run end to end in their ``--smoke`` configuration."""

import math
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _main(name):
    """``main`` of ``examples/<name>.py``, loaded without running the script."""
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
    return namespace["main"]


def _is_fraction(value):
    return 0.0 <= value <= 1.0


@pytest.mark.parametrize("dataset", ["digits", "breast_cancer"])
def test_yang_table_smoke(dataset, tmp_path, capsys):
    out = tmp_path / "table.md"
    rows = _main("yang_table")(["--smoke", "--dataset", dataset, "--out", str(out)])
    assert len(rows) >= 1
    keys = {"method", "dropout", "train_acc", "test_acc", "adv_test_acc", "test_lipschitz",
            "gen_gap", "adv_train_acc", "adv_gap"}
    for row in rows:
        assert keys <= set(row)
        for key in ("train_acc", "test_acc", "adv_test_acc", "adv_train_acc"):
            assert _is_fraction(row[key]), (key, row[key])
        assert row["adv_test_acc"] <= row["test_acc"]
        assert row["test_lipschitz"] >= 0 and np.isfinite(row["test_lipschitz"])
        assert row["gen_gap"] == pytest.approx(row["train_acc"] - row["test_acc"])
        assert row["adv_gap"] == pytest.approx(row["adv_train_acc"] - row["adv_test_acc"])
    text = out.read_text()
    for column in ("train acc", "test acc", "adv test acc", "test lipschitz", "gen gap",
                   "adv gap"):
        assert column in text
    assert "| Natural |" in text
    assert "test lipschitz" in capsys.readouterr().out


@pytest.mark.parametrize("data", ["digits", pytest.param("mnist", marks=pytest.mark.slow)])
def test_score_vs_trades_smoke(tmp_path, capsys, data):
    plot = tmp_path / "tradeoff.png"
    out = tmp_path / "table.md"
    rows = _main("score_vs_trades")(["--smoke", "--data", data, "--plot", str(plot),
                                     "--out", str(out)])
    assert {row["family"] for row in rows} == {"SCORE", "TRADES"}
    for row in rows:
        assert {"method", "beta", "clean_acc", "pgd_acc", "auto_acc"} <= set(row)
        for key in ("clean_acc", "pgd_acc", "auto_acc"):
            assert _is_fraction(row[key]), (key, row[key])
        assert row["pgd_acc"] <= row["clean_acc"]
        assert row["auto_acc"] <= row["clean_acc"]
    assert plot.stat().st_size > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "AutoAttack acc" in out.read_text() and data in out.read_text()
    assert "AutoAttack acc" in capsys.readouterr().out


def test_separation_of_datasets(tmp_path):
    out = tmp_path / "sep.md"
    rows = _main("separation_of_datasets")(["--eps", "0.1", "--out", str(out)])
    assert {row["dataset"].split()[0] for row in rows} == {"digits", "breast_cancer", "wine"}
    for row in rows:
        assert row["two_eps"] == pytest.approx(2 * row["eps"])
        assert 0 < row["train_train_min"] <= row["train_train_mean"]
        assert 0 < row["test_train_min"] <= row["test_train_mean"]
        assert _is_fraction(row["robust_accuracy_ceiling"])
        assert row["separated"] == (row["train_train_min"] > row["two_eps"])
    assert "train-train min" in out.read_text()


def test_tabular_breast_cancer_smoke(capsys):
    results = _main("tabular_breast_cancer")(["--smoke"])
    results = np.asarray(results)
    assert results.ndim == 2 and results.shape[1] == 3  # clean, robust, ceiling
    clean, robust, ceiling = results.T
    assert np.all((0 <= clean) & (clean <= 1))
    assert np.all((0 <= robust) & (robust <= clean))
    assert np.all((0 <= ceiling) & (ceiling <= 1))
    assert "breast_cancer" in capsys.readouterr().out


def test_plot_robustness_smoke(tmp_path):
    result = _main("plot_robustness")(["--smoke", "--out-dir", str(tmp_path)])
    for name in ("robustness_curve", "tradeoff", "separation"):
        path = result["paths"][name]
        assert path == tmp_path / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for accuracy in result["curves"].values():
        assert all(_is_fraction(a) for a in accuracy)
    tradeoff = result["tradeoff"]
    assert {line.get_label() for line in tradeoff.line_} == {"TRADESClassifier",
                                                             "SCOREClassifier"}
    assert result["separation"].train_hist_[0].sum() == result["separation"].report_.n_train


def test_digits_recipe_smoke(tmp_path):
    import torch

    threads = torch.get_num_threads()
    out = tmp_path / "table.md"
    try:
        (row,) = _main("digits_recipe")(["--smoke", "--threads", "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert row["variant"] == "recipe" and 0 <= row["pgd20"] <= row["clean"] <= 100
    assert "| recipe |" in out.read_text()


def test_digits_recipe_set_changes_one_setting(capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        (row,) = _main("digits_recipe")(
            ["--smoke", "--threads", "1", "--set", "method=at", "--set", "ls=0.2"]
        )
    finally:
        torch.set_num_threads(threads)
    assert row["variant"] == "recipe, method='at', ls=0.2"
    assert "'method': 'at'" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _main("digits_recipe")(["--smoke", "--set", "ls 0.2"])


def test_digits_recipe_fast_variant(capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        (row,) = _main("digits_recipe")(["--fast", "--smoke", "--threads", "1",
                                         "--set", "beta=7.0"])
    finally:
        torch.set_num_threads(threads)
    assert row["variant"] == "fast recipe, beta=7.0"
    printed = capsys.readouterr().out
    for setting in ("'optimizer__weight_decay': 0.0005", "'max_shift': 2", "'beta': 7.0",
                    "'late_attack_steps': 10"):
        assert setting in printed



def _run_restoring_threads(name, argv):
    """``main(argv)`` of an example that sets torch's thread count, which is restored."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _main(name)(argv)
    finally:
        torch.set_num_threads(threads)


def test_mnist_separation_smoke(tmp_path):
    out = tmp_path / "sep.md"
    (row,) = _main("mnist_separation")(["--smoke", "--out", str(out)])
    assert row["norm"] == "linf" and 0 < row["tt_min"] <= row["tt_mean"] <= 1
    assert "train-train min" in out.read_text()


def test_mnist_trades_smoke(tmp_path):
    out = tmp_path / "trades.md"
    saved = tmp_path / "trades-{beta}.srm"
    measured, published = _run_restoring_threads(
        "mnist_trades", ["--smoke", "--out", str(out), "--save", str(saved)])
    assert 0 <= measured["auto"] <= measured["pgd"] + 1e-9 <= measured["clean"] + 1e-9 <= 100
    assert published["clean"] == 99.48
    assert "AutoAttack" in out.read_text()
    from sklearn_robust.persistence import load_model

    model = load_model(tmp_path / "trades-1.srm")  # the saved model scores as measured
    mnist_split = runpy.run_path(str(EXAMPLES / "_mnist.py"))["mnist_split"]
    _, X_test, _, y_test = mnist_split(0, smoke=True)
    assert 100 * model.score(X_test, y_test) == pytest.approx(measured["clean"])
    # --load evaluates the saved model again without training
    again, _ = _run_restoring_threads("mnist_trades", ["--smoke", "--load", str(saved)])
    assert again["clean"] == pytest.approx(measured["clean"])
    assert math.isnan(again["fit_s"])


def test_mnist_trades_smoke_on_a_subset_with_one_cycle(tmp_path):
    measured, _ = _run_restoring_threads(
        "mnist_trades", ["--smoke", "--schedule", "onecycle", "--lr", "2e-3", "--auto-n", "20"])
    assert measured["auto_on"] == "first 20"
    assert 0 <= measured["auto"] <= measured["pgd_there"] + 1e-9 <= 100


@pytest.mark.slow  # options reaching the saved model: fast in the weight-perturbation test
def test_mnist_trades_cheaper_training_attack(tmp_path):
    """--attack-steps and --step-size set the training attack of the saved model."""
    saved = tmp_path / "trades-{beta}.srm"
    _run_restoring_threads("mnist_trades", ["--smoke", "--attack-steps", "1", "--step-size",
                                            "0.05", "--save", str(saved)])
    from sklearn_robust.persistence import load_model

    model = load_model(tmp_path / "trades-1.srm")
    assert (model.attack_steps, model.step_size) == (1, 0.05)


def test_mnist_trades_with_weight_perturbation_and_averaging(tmp_path):
    """--awp-gamma reaches the saved model; --ema-decay trains with the average (saved
    models keep no callbacks, so the run finishing is what is checked of it)."""
    saved = tmp_path / "trades-{beta}.srm"
    rows = _run_restoring_threads("mnist_trades", ["--smoke", "--awp-gamma", "0.005", "--ema-decay",
                                            "0.99", "--weight-decay", "0.0005", "--max-shift",
                                            "2", "--save", str(saved)])
    from sklearn_robust.persistence import load_model

    model = load_model(tmp_path / "trades-1.srm")
    assert model.awp_gamma == 0.005
    params = model.get_params()
    assert params["optimizer__weight_decay"] == 0.0005 and params["max_shift"] == 2
    assert 0 <= rows[0]["auto"] <= rows[0]["clean"] <= 100


def test_mnist_yang_table_smoke(tmp_path):
    out = tmp_path / "yang.md"
    rows = _run_restoring_threads("mnist_yang_table", ["--smoke", "--out", str(out)])
    assert [row["method"].split()[0] for row in rows] == ["Natural", "GR"]
    for row in rows:
        assert 0 <= row["adv"] <= row["test"] <= 100
        assert row["lip_yang"] >= 0 and row["lip_best"] >= 0
    assert "test lip (yang2020)" in out.read_text()


def test_defaults_study_smoke(tmp_path):
    out = tmp_path / "defaults.md"
    result = _run_restoring_threads("defaults_study", ["--smoke", "--out", str(out)])
    summary = result["summary"]
    assert [(row["dataset"], row["method"]) for row in summary] == [
        (d, m) for d in ("digits", "breast_cancer", "wine")
        for m in ("Natural", "GR", "SCORE", "TRADES")]
    for row in result["grid"]:
        assert all(_is_fraction(v) for v in row["val_clean"] + row["val_robust"])
        assert all(r <= c for r, c in zip(row["val_robust"], row["val_clean"], strict=True))
    # one chosen value per method and data set; the default is always evaluated
    for dataset, method in {(r["dataset"], r["method"]) for r in result["grid"]}:
        rows = [r for r in result["grid"] if (r["dataset"], r["method"]) == (dataset, method)]
        assert sum(r["chosen"] for r in rows) == 1 and sum(r["default"] for r in rows) == 1
    for row in summary:
        for which in ("default", "chosen"):
            for clean, pgd20, pgd50 in zip(row[f"{which}_clean"], row[f"{which}_pgd20"],
                                           row[f"{which}_pgd50"], strict=True):
                assert 0 <= pgd20 <= clean <= 1 and 0 <= pgd50 <= clean
        assert row["delta_pgd20"] == pytest.approx(
            np.subtract(row["chosen_pgd20"], row["default_pgd20"]).tolist())
    from sklearn_robust import GRClassifier

    gr = next(r for r in summary if r["method"] == "GR")  # the default is read from the code
    assert gr["default_setting"] == f"lam {GRClassifier().lam:g}, h {GRClassifier().h:g}"
    text = out.read_text()
    assert "val PGD-20" in text and "PGD-50x3, chosen" in text


def test_exact_breast_cancer_smoke(capsys):
    rows = _main("exact_breast_cancer")(["--smoke"])
    assert [row["model"] for row in rows] == ["Natural", "TRADES"]
    for row in rows:
        # the sandwich: certified <= exact <= every attack <= clean (no point undecided)
        assert row["ibp"] <= row["crown"] <= row["exact"] <= row["auto"] <= row["pgd20"]
        assert row["pgd20"] <= row["clean"] and row["unknown"] == 0
    assert "exact" in capsys.readouterr().out



@pytest.mark.parametrize("data", ["digits", pytest.param("mnist", marks=pytest.mark.slow)])
def test_certified_training_smoke(data, capsys):
    rows = _main("certified_training")(["--smoke", "--data", data])
    assert {row["method"] for row in rows} == {"IBP", "CROWN-IBP", "TRADES", "Natural"}
    for row in rows:
        for key in ("clean", "ibp", "crown", "auto"):
            assert _is_fraction(row[key]), (key, row[key])
        # certificates are lower bounds, the attack an upper bound
        assert row["ibp"] <= row["auto"] + 1e-12 and row["crown"] <= row["auto"] + 1e-12
        assert row["auto"] <= row["clean"] + 1e-12
    assert "method CROWN-IBP" in capsys.readouterr().out


# ------------------------------------------------------------------ cifar10_trades.py
def test_cifar10_trades_smoke_on_a_stand_in_folder(tmp_path, capsys):
    """--smoke without --data: a stand-in folder written to a temporary folder, one epoch."""
    out = tmp_path / "cifar.md"
    row = _run_restoring_threads("cifar10_trades", ["--smoke", "--threads", "1",
                                                    "--out", str(out)])
    assert (row["n_train"], row["eval_n"], row["auto_n"], row["epochs"]) == (64, 16, 4, 1)
    assert 0 <= row["pgd20"] <= row["clean"] <= 100
    assert _is_fraction(row["auto_fraction"])
    assert row["images_per_s"] > 0 and row["fit_s"] > 0
    text = out.read_text()
    assert "| TRADES, WRN-10-1 | 64 | 1 |" in text and "| 84.92 | 56.61 |" in text
    assert "stand-in folder" in capsys.readouterr().out


def test_cifar10_trades_reads_a_local_folder_and_its_subset(tmp_path, capsys):
    namespace = runpy.run_path(str(EXAMPLES / "cifar10_trades.py"), run_name="example")
    folder = namespace["write_fake_cifar10"](tmp_path / "cifar-10-batches-py", 100)
    row = _run_restoring_threads("cifar10_trades", ["--data", str(folder), "--smoke",
                                                    "--subset", "40", "--auto-n", "0",
                                                    "--threads", "1"])
    assert (row["n_train"], row["eval_n"], row["auto_n"], row["auto"]) == (40, 16, 0, "-")
    printed = capsys.readouterr().out
    assert f"loaded 40 training and 25 test images from {folder}" in printed
    assert "AutoAttack" not in printed.split("| run |")[0]  # not run


def test_cifar10_trades_names_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _main("cifar10_trades")(["--data", str(tmp_path / "nowhere"), "--smoke"])
    assert "nowhere does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _main("cifar10_trades")([])  # neither --data nor --fake-data
    assert "give --data PATH" in capsys.readouterr().err


def test_cifar10_trades_trains_the_papers_recipe_by_default(tmp_path):
    """The defaults are the TRADES recipe (checked on the estimator, nothing trained)."""
    import torch

    namespace = runpy.run_path(str(EXAMPLES / "cifar10_trades.py"), run_name="example")
    _, args = namespace["parse_args"](["--data", str(tmp_path)])
    params = namespace["make_classifier"](args).get_params()
    assert params["module"] == "wideresnet"
    assert (params["module__depth"], params["module__widen_factor"]) == (34, 10)
    assert (params["eps"], params["step_size"], params["attack_steps"]) == (8 / 255, 2 / 255, 10)
    assert (params["beta"], params["batch_size"], params["max_epochs"]) == (6.0, 128, 100)
    assert params["optimizer"] is torch.optim.SGD and params["lr"] == 0.1
    assert params["optimizer__momentum"] == 0.9 and params["optimizer__weight_decay"] == 2e-4
    assert (params["lr_schedule"], params["max_shift"], params["flip"]) == ("piecewise", 4, True)
    assert params["bounds"] == (0.0, 1.0)
    assert (args.eval_n, args.auto_n, args.subset) == (10_000, 0, None)
