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


# `python -m sklearn_robust` also runs (fast) in test_the_installed_command_prints_no_traceback.
@pytest.mark.parametrize("entry", [pytest.param(["-m", "sklearn_robust"], marks=pytest.mark.slow),
                                   ["-m", "sklearn_robust.cli"]])
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
        for argv in (["separation", str(path)], ["evaluate", model, str(path)],
                     ["certify", model, str(path), "--eps", "0.1"]):
            line = _assert_one_line_exit_2(argv, capsys)
            assert path.name in line or "unknown data set" in line, (name, line)


# The commands that read a model file, with the options they need besides it and the data.
MODEL_COMMANDS = {"evaluate": [], "certify": ["--eps", "0.1"]}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_commands_report_bad_model_files_in_one_line(command, tmp_path, model_files,
                                                           capsys):
    files, pickles, joblib = _bad_model_files(tmp_path, model_files)
    for name, path in files.items():
        line = _assert_one_line_exit_2([command, str(path), "digits",
                                        *MODEL_COMMANDS[command]], capsys)
        assert path.name in line, (name, line)
    for name, (path, obj) in pickles.items():
        if obj is None:
            path.write_bytes(b"\x80\x04 this is no pickle")
        else:
            joblib.dump(obj, path)
        line = _assert_one_line_exit_2([command, str(path), "digits", "--trust-pickle",
                                        *MODEL_COMMANDS[command]], capsys)
        assert path.name in line, (name, line)


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_commands_report_data_the_model_cannot_take(command, model_files, capsys):
    model, options = str(model_files / "model.srm"), MODEL_COMMANDS[command]
    line = _assert_one_line_exit_2([command, model, "wine", *options], capsys)
    assert "features" in line
    line = _assert_one_line_exit_2([command, model, "digits", "--input-shape", "3", "3",
                                    *options], capsys)
    assert "--input-shape" in line


def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sklearn_robust", "separation",
                             str(tmp_path / "missing.npz")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sklearn-robust separation: error: {tmp_path / 'missing.npz'}: no such file.")


# ------------------------------------------------ certify
@pytest.fixture(scope="module")
def cancer_model(tmp_path_factory):
    """A small pipeline on breast_cancer, saved: ``(path, the model as loaded back)``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_robust import NaturalClassifier
    from sklearn_robust.cli import load_dataset
    from sklearn_robust.persistence import load_model, save_model

    X, y = load_dataset("breast_cancer")
    model = make_pipeline(StandardScaler(), NaturalClassifier(
        max_epochs=2, random_state=0, module__hidden_units=(8,))).fit(X, y)
    path = tmp_path_factory.mktemp("cancer") / "cancer.srm"
    save_model(model, path)
    return path, load_model(path)


def _certify_json(argv, capsys):
    assert main(["certify", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("method", ["crown", "ibp"])
def test_certify_rows_are_the_certified_accuracy_score(method, cancer_model, capsys):
    from sklearn_robust.cli import load_dataset
    from sklearn_robust.metrics import certified_accuracy_score

    path, model = cancer_model
    result = _certify_json([str(path), "breast_cancer", "--eps", "0", "0.01", "0.05",
                            "--method", method], capsys)
    assert {k: result[k] for k in ("method", "norm", "bounds", "attack")} == {
        "method": method, "norm": "linf", "bounds": None, "attack": None}
    X, y = load_dataset("breast_cancer")
    assert [row["eps"] for row in result["rows"]] == [0, 0.01, 0.05]
    for row in result["rows"]:
        score, cert = certified_accuracy_score(model, X, y, eps=row["eps"], method=method,
                                               return_certificates=True)
        assert row["certified_accuracy"] == score and row["counts"] == cert.counts()
        assert row["n_samples"] == 569 == sum(row["counts"].values())
        assert row["clean_accuracy"] == model.score(X, y) and row["seconds"] >= 0
        assert row["certified_accuracy"] <= row["clean_accuracy"]
        assert "robust_accuracy" not in row
    assert result["rows"][0]["certified_accuracy"] == result["rows"][0]["clean_accuracy"]
    certified = [row["certified_accuracy"] for row in result["rows"]]
    assert certified == sorted(certified, reverse=True) and certified[-1] < certified[0]
    assert main(["certify", str(path), "breast_cancer", "--eps", "0.01", "--method",
                 method]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"method {method}, norm linf, bounds None"
    assert lines[1].split() == ["eps", "samples", "clean", "certified", "seconds", "statuses"]
    assert lines[2].split()[:4] == ["0.01", "569", f"{certified[0]:.4f}",
                                    f"{result['rows'][1]['certified_accuracy']:.4f}"]


def test_certify_options_reach_the_metric(cancer_model, capsys):
    from sklearn.model_selection import train_test_split

    from sklearn_robust.cli import load_dataset
    from sklearn_robust.metrics import certified_accuracy_score

    path, model = cancer_model
    result = _certify_json([str(path), "breast_cancer", "--eps", "0.05", "--norm", "l2",
                            "--bounds", "-20", "20", "--alpha-steps", "2", "--test-size",
                            "0.1", "--seed", "1"], capsys)
    assert (result["norm"], result["bounds"]) == ("l2", [-20.0, 20.0])
    X, y = load_dataset("breast_cancer")
    _, X, _, y = train_test_split(X, y, test_size=0.1, stratify=y, random_state=1)
    score, cert = certified_accuracy_score(model, X, y, eps=0.05, norm="l2",
                                           bounds=(-20.0, 20.0), alpha_steps=2,
                                           return_certificates=True)
    [row] = result["rows"]
    assert (row["n_samples"], row["certified_accuracy"], row["counts"]) == (
        57, score, cert.counts())


def test_certify_intermediate_reaches_the_metric(cancer_model, monkeypatch, capsys):
    from sklearn.model_selection import train_test_split

    from sklearn_robust import verify
    from sklearn_robust.cli import load_dataset
    from sklearn_robust.metrics import certified_accuracy_score

    path, model = cancer_model
    seen = []
    crown = verify.crown_margin_bounds
    monkeypatch.setattr(verify, "crown_margin_bounds", lambda *args, **kwargs: (
        seen.append(kwargs["intermediate"]), crown(*args, **kwargs))[1])
    argv = [str(path), "breast_cancer", "--eps", "0.05", "--intermediate", "ibp",
            "--test-size", "0.1"]
    result = _certify_json(argv, capsys)
    assert (result["method"], result["intermediate"]) == ("crown", "ibp")
    assert seen and set(seen) == {"ibp"}
    X, y = load_dataset("breast_cancer")
    _, X, _, y = train_test_split(X, y, test_size=0.1, stratify=y, random_state=0)
    score, cert = certified_accuracy_score(model, X, y, eps=0.05, intermediate="ibp",
                                           return_certificates=True)
    [row] = result["rows"]
    assert (row["certified_accuracy"], row["counts"]) == (score, cert.counts())
    main(["certify", *argv])
    assert capsys.readouterr().out.splitlines()[0] == (
        "method crown, intermediate ibp, norm linf, bounds None")
    assert _certify_json(argv[:4] + argv[6:], capsys)["intermediate"] is None
    assert seen[-1] == "crown"  # not given: full CROWN


def test_certify_exact_on_a_few_points(cancer_model, tmp_path, capsys):
    import numpy as np

    from sklearn_robust.cli import load_dataset

    path, _ = cancer_model
    X, y = load_dataset("breast_cancer")
    data = tmp_path / "few.csv"
    np.savetxt(data, np.column_stack([X[:20], y[:20]]), delimiter=",")
    common = [str(path), str(data), "--eps", "0.02", "0.1"]
    exact = _certify_json([*common, "--method", "exact", "--time-limit", "30"], capsys)
    crown = _certify_json([*common, "--method", "crown"], capsys)
    for row, bound in zip(exact["rows"], crown["rows"], strict=True):
        assert row["n_samples"] == 20 == sum(row["counts"].values())
        assert set(row["counts"]) <= {"certified", "counterexample", "misclassified",
                                      "unknown"}
        assert bound["certified_accuracy"] <= row["certified_accuracy"] <= row[
            "clean_accuracy"]
    line = _assert_one_line_exit_2(["certify", *common, "--method", "exact", "--norm", "l2"],
                                   capsys)
    assert "exact" in line and "l2" in line


def test_certify_attack_gives_the_upper_bound(model_files, capsys):
    model = str(model_files / "model.srm")
    argv = [model, "digits", "--test-size", "0.1", "--eps", "0.02", "0.1", "--attack", "pgd"]
    result = _certify_json(argv, capsys)
    assert result["attack"] == "pgd"
    for row in result["rows"]:
        assert row["n_samples"] == 180
        assert row["certified_accuracy"] <= row["robust_accuracy"] <= row["clean_accuracy"]
    main(["certify", *argv])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(", attack pgd") and "robust" in lines[1].split()
    assert len(lines) == 4


def test_certify_smoothing(cancer_model, capsys):
    path, _ = cancer_model
    result = _certify_json([str(path), "breast_cancer", "--test-size", "0.05", "--method",
                            "smoothing", "--sigma", "0.5", "--n0", "10", "--n", "200",
                            "--alpha", "0.01", "--eps", "0.1"], capsys)
    assert result["norm"] == "l2"  # smoothing's default
    [row] = result["rows"]
    assert set(row["counts"]) <= {"certified", "abstain", "misclassified", "unknown"}
    assert sum(row["counts"].values()) == row["n_samples"] == 29


@pytest.mark.parametrize("options, expected", [
    (["--eps", "-0.1"], "--eps must be >= 0"),
    (["--eps", "0.1", "-0.5"], "--eps must be >= 0, got -0.5"),
    (["--eps", "0.1", "--method", "exact", "--norm", "l2"], "certifies the norms"),
    (["--eps", "0.1", "--method", "smoothing"], "needs --sigma"),
    (["--eps", "0.1", "--method", "smoothing", "--norm", "linf", "--sigma", "0.5"],
     "certifies the norms"),
    (["--eps", "0.1", "--method", "smoothing", "--sigma", "0.5", "--attack", "pgd"],
     "--attack"),
    (["--eps", "0.1", "--sigma", "0.5"], "--sigma is an option of --method smoothing"),
    (["--eps", "0.1", "--time-limit", "5"], "--time-limit is an option of --method exact"),
    (["--eps", "0.1", "--method", "ibp", "--alpha-steps", "3"], "--alpha-steps"),
    (["--eps", "0.1", "--method", "exact", "--intermediate", "ibp"],
     "--intermediate is an option of --method crown, not of --method exact"),
    (["--eps", "0.1", "--method", "smoothing", "--sigma", "-1"], "sigma"),
    (["--eps", "0.1", "--bounds", "1", "-1"], "low <= high"),
    (["--eps", "0.1", "--bounds", "0.2", "0.8"], "outside the declared bounds"),
])
def test_certify_reports_bad_arguments_in_one_line(options, expected, model_files, capsys):
    line = _assert_one_line_exit_2(["certify", str(model_files / "model.srm"), "digits",
                                    *options], capsys)
    assert expected in line, line


@pytest.mark.parametrize("options", [[], ["--eps"], ["--eps", "0.1", "--method", "milp"],
                                     ["--eps", "0.1", "--norm", "l3"],
                                     ["--eps", "0.1", "--intermediate", "zonotope"],
                                     ["--eps", "0.1", "--bounds", "0"]])
def test_certify_argument_errors_exit_2_through_argparse(options, model_files, capsys):
    with pytest.raises(SystemExit) as info:
        main(["certify", str(model_files / "model.srm"), "digits", *options])
    assert info.value.code == 2
    assert "usage: sklearn-robust certify" in capsys.readouterr().err


def test_certify_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["certify", "--help"])
    out = capsys.readouterr().out
    for option in ("--eps", "--norm", "--method", "--bounds", "--intermediate",
                   "--time-limit", "--alpha-steps",
                   "--sigma", "--n0", "--n N", "--alpha", "--attack", "--trust-pickle",
                   "--input-shape", "--test-size", "--json"):
        assert option in out, option


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


@pytest.mark.slow  # two fresh interpreters; the same output in-process just above
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
