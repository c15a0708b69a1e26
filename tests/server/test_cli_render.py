"""The offline CLI: render, params, devices, patch ... (in-process, plus one real subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import KeyTable
from engine.schema import HELD_NAMES, ONSET_NAMES
from patches import Bank, Patch, load_patch, save_patch
from server.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patches" / "bell.json"


def test_render_patch_file_to_wav_and_json(tmp_path, capsys):
    out = tmp_path / "bell.wav"
    rc = main(
        [
            "render",
            "--patch",
            str(EXAMPLE),
            "--out",
            str(out),
            "--pitch",
            "69",
            "--velocity",
            "127",
            "--hold",
            "0.5",
            "--tail",
            "0.25",
            "--dump-json",
        ]
    )
    assert rc == 0
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and audio.shape == (12000,)
    assert 0.3 < np.max(np.abs(audio)) <= 1.0
    # The seed's JSON: the theta of the note rendered, by name; the patch beside it.
    theta = json.loads((tmp_path / "bell.json").read_text())["theta"]
    assert theta["pitch_midi"] == 69 and theta["velocity"] == 127
    assert theta["duration_s"] == pytest.approx(0.75)
    assert theta["mod_ratio"] == load_patch(EXAMPLE).table.center()["mod_ratio"]
    assert load_patch(tmp_path / "bell.json").table == load_patch(EXAMPLE).table
    assert "wrote" in capsys.readouterr().out


def test_render_midi_bounce(tmp_path):
    import mido

    mid = mido.MidiFile()
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.Message("note_on", note=60, velocity=100, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=480))
    mid.save(tmp_path / "s.mid")
    out = tmp_path / "s.wav"
    assert (
        main(
            [
                "render",
                "--patch",
                str(EXAMPLE),
                "--midi",
                str(tmp_path / "s.mid"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    audio, sr = sf.read(out)
    assert sr == 48000 and audio.shape[1] == 2 and len(audio) == int(2.5 * 48000)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["render", "--patch", "no-such-patch", "--out", "x.wav"],
            "no patch named 'no-such-patch'",
        ),
        (["render", "--patch", "missing.json", "--out", "x.wav"], "cannot read"),
        (["render", "--patch", str(EXAMPLE), "--out", "/no/such/dir/x.wav"], "does not exist"),
        (
            ["render", "--patch", str(EXAMPLE), "--midi", "nothere.mid", "--out", "x.wav"],
            "cannot read MIDI file",
        ),
        (
            ["render", "--patch", str(EXAMPLE), "--out", "x.wav", "--reverb-send", "0.5"],
            "effect options (--reverb-send, --reverb-room ...) apply to a --midi bounce",
        ),
    ],
)
def test_render_errors_are_one_clear_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "arg", [["--pitch", "200"], ["--velocity", "0"], ["--hold", "nan"], ["--pitch", "sixty"],
            ["--reverb-room", "1.5"], ["--delay-time", "nan"], ["--chorus-send", "-0.1"]]
)
def test_render_rejects_bad_numbers(tmp_path, capsys, arg):
    with pytest.raises(SystemExit) as e:
        main(["render", "--patch", str(EXAMPLE), "--out", str(tmp_path / "x.wav"), *arg])
    assert e.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_params_lists_every_parameter(capsys):
    assert main(["params", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in d["params"]][4:] == [
        "attack_s",
        "decay_s",
        "sustain",
        "release_s",
        "mod_ratio",
        "mod_index",
        "index_peak",
        "index_decay_s",
        "noise_level",
        "noise_decay_s",
        "op3_ratio",
        "op3_index",
        "op3_peak",
        "op3_layout",
        "band_level",
        "band_width",
        "band_centre",
        *ONSET_NAMES,
        *HELD_NAMES,
        "onset_s",
        "darken_db",
        "darken_s",
        "env_curve",
    ]
    assert d["params"][4]["max"] == 2.0


def test_patch_commands(tmp_path, capsys):
    bank = tmp_path / "bank"
    save_patch(
        Patch("warm", KeyTable.flat({"attack_s": 0.2, "mod_index": 0.5})), tmp_path / "warm.json"
    )
    base = ["patch", "--bank", str(bank)]
    assert (
        main(
            [
                *base,
                "morph",
                str(EXAMPLE),
                str(tmp_path / "warm.json"),
                "--t",
                "0.5",
                "--name",
                "mix",
            ]
        )
        == 0
    )
    assert (
        main(
            [*base, "morph", str(EXAMPLE), str(tmp_path / "warm.json"), "--t", "1", "--name", "mix"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "saved 'mix-2'" in out and "use --force" in out
    assert Bank(bank).load("mix-2").table.center()["attack_s"] == pytest.approx(0.2)
    assert main([*base, "program", "5", "mix-2"]) == 0
    assert main([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert "  5  mix-2" in listing and "  0  mix" in listing
    png = tmp_path / "mix.png"
    assert main([*base, "show", "mix", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    wav = tmp_path / "mix.wav"
    assert main([*base, "render", "mix", "--out", str(wav), "--hold", "0.2", "--tail", "0.1"]) == 0
    assert sf.info(wav).frames == int(0.3 * 48000)
    assert main([*base, "show", "../etc/passwd"]) == 2


def test_patch_new_from_a_prompt(tmp_path, capsys):
    from model import get_encoder
    from tests.model.conftest import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "ckpt", get_encoder("minilm"))
    bank = tmp_path / "bank"
    assert (
        main(
            [
                "patch",
                "--bank",
                str(bank),
                "new",
                "a soft flute",
                "--name",
                "soft-flute",
                "--model",
                str(ckpt),
            ]
        )
        == 0
    )
    p = Bank(bank).load("soft-flute")
    assert (
        p.prompt == "a soft flute"
        and p.source["encoder"] == "minilm"
        and p.source["temperature"] == 0.0
    )
    assert p.source["checkpoint"].startswith("sha256:")
    # The same prompt at temperature 0 is the same patch.
    out = tmp_path / "f.wav"
    assert (
        main(
            [
                "render",
                "--prompt",
                "a soft flute",
                "--model",
                str(ckpt),
                "--out",
                str(out),
                "--dump-json",
            ]
        )
        == 0
    )
    assert load_patch(tmp_path / "f.json").table.center() == pytest.approx(p.table.center(), rel=2e-5)
    assert main(["render", "--prompt", "   ", "--model", str(ckpt), "--out", str(out)]) == 2
    assert "prompt" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    # The console script installed beside this interpreter (not one elsewhere on PATH).
    exe = Path(sys.executable).parent / "promptsynth"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "server"]
    r = subprocess.run(
        [*cmd, "render", "--patch", str(EXAMPLE), "--out", str(tmp_path / "b.wav")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b.wav").exists()
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert "render" in r.stdout and "patch" in r.stdout
