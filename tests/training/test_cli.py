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


def test_refit_of_some_datasets_keeps_the_others_labels(tmp_path, capsys):
    """`dataset refit --datasets nsynth` refits the real notes (never worse, by the
    engine's render) and copies every other dataset's record unchanged."""
    import json
    from pathlib import Path

    from engine import SCHEMA_VERSION
    from training.dataset import build_dataset
    from training.manifest import read_manifest, write_manifest

    data = tmp_path / "data"
    build_dataset(data, nsynth_root=Path(__file__).parents[1] / "data" / "nsynth", fit=False, progress=False)
    records = read_manifest(data / "manifest.jsonl")
    assert len(records) >= 4
    # The same recordings once more under another dataset's name: they must stay as they are.
    others = [dict(r, note_id=r["note_id"] + "-sf", dataset="soundfont") for r in records[:3]]
    write_manifest(data / "manifest.jsonl", records + others)

    assert main(["dataset", "refit", "--data", str(data), "--out", str(tmp_path / "x"), "--datasets", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "nsynth, soundfont" in err

    out = tmp_path / "refit"
    argv = ["dataset", "refit", "--data", str(data), "--out", str(out), "--steps", "2", "--datasets", "nsynth",
            "--workers", "1"]
    assert main(argv) == 0
    got = read_manifest(out / "manifest.jsonl")
    assert [r["note_id"] for r in got] == [r["note_id"] for r in records + others]
    for before, after in zip(others, got[len(records):]):
        assert after["theta"] == before["theta"] and after["dataset"] == "soundfont"
    refitted = got[: len(records)]
    assert all(r["schema_version"] == SCHEMA_VERSION for r in refitted)
    summary = json.loads((out / "refit.json").read_text())
    assert summary["notes"] == len(records) and summary["kept_as_they_were"] == len(others)
    assert summary["datasets"] == ["nsynth"] and "soundfont" not in summary
    assert summary["nsynth"]["distance_after"] <= summary["nsynth"]["distance_before"]
