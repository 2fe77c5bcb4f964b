"""The command line and the main job, in a smoke configuration."""

import json
import subprocess
import sys

import pytest

from sklearn_robust import _demo
from sklearn_robust.cli import build_parser, main


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


def test_separation_rejects_unknown_data(capsys):
    assert main(["separation", "nonexistent.xyz"]) == 2
    assert "unknown data set" in capsys.readouterr().err


def _tiny_model():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from sklearn_robust import NaturalClassifier
    from sklearn_robust.cli import load_dataset

    X, y = load_dataset("digits")
    model = make_pipeline(MinMaxScaler(), NaturalClassifier(
        max_epochs=2, random_state=0, module__hidden_units=(32,)))
    return model.fit(X, y)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    import joblib

    from sklearn_robust.persistence import save_model

    folder = tmp_path_factory.mktemp("models")
    model = _tiny_model()
    save_model(model, folder / "model.srm")
    joblib.dump(model, folder / "model.joblib")
    return folder


def test_evaluate_saved_model(model_files, capsys):
    assert main(["evaluate", str(model_files / "model.srm"), "digits", "--test-size", "0.2",
                 "--eps", "0.1", "--lipschitz", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_samples"] == 360
    assert 0 <= result["robust_accuracy"] <= result["clean_accuracy"] <= 1
    assert result["local_lipschitz"] > 0


def test_evaluate_reads_pickles_only_when_trusted(model_files, capsys):
    pickle_file = str(model_files / "model.joblib")
    assert main(["evaluate", pickle_file, "digits", "--json"]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and len(err.splitlines()) == 1
    assert main(["evaluate", pickle_file, "digits", "--json", "--trust-pickle"]) == 0
    trusted = json.loads(capsys.readouterr().out)
    main(["evaluate", str(model_files / "model.srm"), "digits", "--json"])
    assert json.loads(capsys.readouterr().out) == trusted


# ------------------------------------------------ bad inputs: one line, exit code 2
def _bad_data_files(folder):
    """name -> path of a data file that is missing, empty, corrupt, ill-shaped or not data."""
    import numpy as np

    files = {"missing": folder / "missing.npz", "directory": folder / "dir.npz"}
    (folder / "dir.npz").mkdir(exist_ok=True)
    for suffix in (".npz", ".npy", ".csv"):
        files[f"empty{suffix}"] = folder / f"empty{suffix}"
        files[f"empty{suffix}"].write_bytes(b"")
        files[f"corrupt{suffix}"] = folder / f"corrupt{suffix}"
        files[f"corrupt{suffix}"].write_bytes(b"PK\x03\x04 not an archive \x00\xff,\n;")
    rng = np.random.default_rng(0)
    shapes = {"1d-X": dict(X=rng.random(10), y=np.zeros(10)),
              "length-mismatch": dict(X=rng.random((10, 3)), y=np.zeros(7)),
              "2d-y": dict(X=rng.random((10, 3)), y=np.zeros((10, 2))),
              "no-samples": dict(X=np.zeros((0, 3)), y=np.zeros(0)),
              "nan": dict(X=np.full((10, 3), np.nan), y=np.arange(10) % 2),
              "strings-X": dict(X=np.array([["a", "b"]] * 10), y=np.arange(10) % 2),
              "wrong-keys": dict(a=np.zeros(3), b=np.zeros(3))}
    for name, arrays in shapes.items():
        files[name] = folder / f"{name}.npz"
        np.savez(files[name], **arrays)
    files["one-column.csv"] = folder / "one-column.csv"
    files["one-column.csv"].write_text("1\n2\n3\n")
    files["text.csv"] = folder / "text.csv"
    files["text.csv"].write_text("a,b\nc,d\n")
    files["1d.npy"] = folder / "1d.npy"
    np.save(files["1d.npy"], np.arange(5.0))
    files["pickled.npy"] = folder / "pickled.npy"
    np.save(files["pickled.npy"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files["a-model-as-data"] = folder / "model.srm"
    return files


def _bad_model_files(folder, model_files):
    import joblib
    import numpy as np

    from sklearn_robust import NaturalClassifier

    files = {"missing": folder / "missing.srm", "empty": folder / "empty.srm",
             "corrupt": folder / "corrupt.srm", "data-as-model": folder / "data.npz",
             "untrusted-pickle": model_files / "model.joblib"}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"PK\x03\x04\x00garbage")
    np.savez(files["data-as-model"], X=np.zeros((3, 2)), y=np.zeros(3))
    return files, {
        "pickle-of-a-dict": (folder / "dict.joblib", {"not": "a model"}),
        "pickle-of-an-unfitted-model": (folder / "unfitted.joblib", NaturalClassifier()),
        "pickle-not-a-pickle": (folder / "garbage.joblib", None),
    }, joblib


def _assert_one_line_exit_2(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (argv, captured.err)
    assert len(lines) == 1 and "Traceback" not in captured.err, (argv, captured.err)
    assert lines[0].startswith(f"sklearn-robust {argv[0]}: error:")
    return lines[0]


def test_every_subcommand_reports_bad_data_files_in_one_line(tmp_path, model_files, capsys):
    import shutil

    shutil.copy(model_files / "model.srm", tmp_path / "model.srm")
    model = str(model_files / "model.srm")
    for name, path in _bad_data_files(tmp_path).items():
        for argv in (["separation", str(path)], ["evaluate", model, str(path)]):
            line = _assert_one_line_exit_2(argv, capsys)
            assert path.name in line or "unknown data set" in line, (name, line)


def test_evaluate_reports_bad_model_files_in_one_line(tmp_path, model_files, capsys):
    files, pickles, joblib = _bad_model_files(tmp_path, model_files)
    for name, path in files.items():
        line = _assert_one_line_exit_2(["evaluate", str(path), "digits"], capsys)
        assert path.name in line, (name, line)
    for name, (path, obj) in pickles.items():
        if obj is None:
            path.write_bytes(b"\x80\x04 this is no pickle")
        else:
            joblib.dump(obj, path)
        line = _assert_one_line_exit_2(["evaluate", str(path), "digits", "--trust-pickle"],
                                       capsys)
        assert path.name in line, (name, line)


def test_evaluate_reports_data_the_model_cannot_take(model_files, capsys):
    model = str(model_files / "model.srm")
    line = _assert_one_line_exit_2(["evaluate", model, "wine"], capsys)
    assert "features" in line
    line = _assert_one_line_exit_2(["evaluate", model, "digits", "--input-shape", "3", "3"],
                                   capsys)
    assert "--input-shape" in line


def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sklearn_robust", "separation",
                             str(tmp_path / "missing.npz")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sklearn-robust separation: error: {tmp_path / 'missing.npz'}: no such file.")


# ------------------------------------------------ --version
def _installed_versions():
    from importlib.metadata import version

    import sklearn_robust

    return {"sklearn-robust": sklearn_robust.__version__, "torch": version("torch"),
            "skorch": version("skorch"), "scikit-learn": version("scikit-learn")}


def test_version_prints_the_stack_and_needs_no_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{name} {version}" for name, version in _installed_versions().items()]
    assert captured.err == ""
    assert "--version" in build_parser().format_help()


def test_version_from_the_installed_entry_points():
    from pathlib import Path

    commands = [[sys.executable, "-m", "sklearn_robust", "--version"]]
    script = Path(sys.executable).with_name("sklearn-robust")  # the console script, if any
    if script.exists():
        commands.append([str(script), "--version"])
    expected = [f"{name} {version}" for name, version in _installed_versions().items()]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == expected, command
