"""The `lesionviewer` command's dispatch: version, help, sub-commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lesionviewer import __version__
from lesionviewer.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lesionviewer {__version__}"


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("analyze", "evaluate", "train backbone", "train heads"):
        assert command in out


def test_train_without_a_subcommand_shows_usage(capsys):
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lesionviewer train {") and "backbone" in err and "heads" in err
    assert main(["train", "everything"]) == 2


def test_analyze_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lesionviewer analyze")
    for option in ("--out", "--model", "--samples", "--seed", "--no-crf", "--method", "--device"):
        assert option in out


def test_analyze_without_out_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_the_installed_command_runs_and_analyze_does_not_load_qt_or_training(tmp_path):
    script = (
        "import sys\n"
        "from lesionviewer.cli import main\n"
        f"code = main(['analyze', {str(tmp_path / 'nothing')!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "assert not any(m.split('.')[0] == 'PySide6' for m in sys.modules), 'Qt was imported'\n"
        "assert 'lesionviewer.training' not in sys.modules, 'training code was imported'\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={"LESIONVIEWER_MODEL": str(tmp_path / "no-model"), "OMP_NUM_THREADS": "1",
                              "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2, run.stderr  # the model is missing; Qt and training never loaded
    assert "model folder not found" in run.stderr
    version = subprocess.run([sys.executable, "-m", "lesionviewer.cli", "--version"], capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"lesionviewer {__version__}"
