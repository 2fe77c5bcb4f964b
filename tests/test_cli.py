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
