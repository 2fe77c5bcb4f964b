"""The command line and the main job, in a smoke configuration."""

import json
import subprocess
import sys

import pytest

from sklearn_robust import _demo
from sklearn_robust.cli import main


@pytest.fixture(scope="module")
def demo_rows():
    return _demo.run_demo(max_epochs=1, attack_steps=1, progress=False, print_fn=lambda *_: None)


def test_demo_rows_are_real_measurements(demo_rows):
    assert [r["model"] for r in demo_rows] == ["Natural", "AT", "TRADES", "SCORE"]
    for row in demo_rows:
        assert 0.0 <= row["pgd_test_acc"] <= row["test_acc"] <= 1.0
        assert 0.5 < row["train_acc"] <= 1.0
        assert row["fit_seconds"] > 0


def test_demo_cli_json_and_table(demo_rows, monkeypatch, capsys):
    calls = []

    def fake_run_demo(**kwargs):
        calls.append(kwargs)
        return demo_rows

    monkeypatch.setattr(_demo, "run_demo", fake_run_demo)
    assert main(["demo", "--epochs", "3", "--attack-steps", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == demo_rows
    assert calls[0]["max_epochs"] == 3 and calls[0]["attack_steps"] == 2
    main(["demo", "--quiet"])
    out = capsys.readouterr().out
    assert "PGD-20 test" in out and "robust points over Natural" in out
    assert calls[1]["max_epochs"] == 20 and calls[1]["progress"] is False


@pytest.mark.parametrize("entry", [["-m", "sklearn_robust"], ["-m", "sklearn_robust.cli"]])
def test_help_from_the_module_entry_points(entry):
    result = subprocess.run([sys.executable, *entry, "demo", "--help"], capture_output=True,
                            text=True, check=True)
    assert "--epochs" in result.stdout


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_separation_bundled_and_files(tmp_path, capsys):
    import numpy as np
    from sklearn.datasets import load_wine

    assert main(["separation", "wine", "--eps", "0.1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_train"] + report["n_test"] == 178 and report["separated"] is True
    X, y = load_wine(return_X_y=True)
    np.savez(tmp_path / "wine.npz", X=X, y=y)
    np.savetxt(tmp_path / "wine.csv", np.column_stack([X, y]), delimiter=",")
    results = []
    for name in ("wine.npz", "wine.csv"):
        main(["separation", str(tmp_path / name), "--json", "--norm", "l2"])
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["train_train_min"] == pytest.approx(results[1]["train_train_min"])
    main(["separation", "digits"])
    assert "train-train" in capsys.readouterr().out


def test_separation_rejects_unknown_data():
    with pytest.raises(ValueError, match="unknown data set"):
        main(["separation", "nonexistent.xyz"])


def test_evaluate_saved_model(tmp_path, capsys):
    import joblib
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from sklearn_robust import NaturalClassifier
    from sklearn_robust.cli import load_dataset

    X, y = load_dataset("digits")
    model = make_pipeline(MinMaxScaler(), NaturalClassifier(max_epochs=3, random_state=0))
    joblib.dump(model.fit(X, y), tmp_path / "model.joblib")
    assert main(["evaluate", str(tmp_path / "model.joblib"), "digits", "--test-size", "0.2",
                 "--eps", "0.1", "--lipschitz", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_samples"] == 360
    assert 0 <= result["robust_accuracy"] <= result["clean_accuracy"] <= 1
    assert result["local_lipschitz"] > 0
