"""`promptsynth dataset/train/eval`: help and user errors."""

from __future__ import annotations

import pytest

from server.cli import main


@pytest.mark.parametrize(
    "argv", [["dataset", "build", "--help"], ["train", "--help"], ["eval", "--help"]]
)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "promptsynth" in capsys.readouterr().out


def test_user_errors(tmp_path, capsys):
    assert main(["dataset", "build", "--out", str(tmp_path / "d")]) == 2
    assert "--nsynth" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "manifest.jsonl" in capsys.readouterr().err
