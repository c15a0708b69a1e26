"""`promptsynth render`, `promptsynth devices`, `promptsynth params`: offline and info commands."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

__all__ = ["register", "resolve_patch", "number_arg", "patch_source"]


def number_arg(kind, lo: float, hi: float, name: str):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a {kind.__name__}, got {text!r}") from None
        if isinstance(v, float) and not math.isfinite(v) or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be in range {lo:g}..{hi:g}, got {text}")
        return v

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render a note (or a MIDI file) to a WAV file, offline",
        description=(
            "Render one note of a patch or of a prompt's patch to a WAV, or bounce a MIDI "
            "file through the same engine. Examples:\n"
            '  promptsynth render --prompt "a guitar note" --out guitar.wav --dump-json\n'
            "  promptsynth render --patch bell.json --pitch 72 --out bell.wav\n"
            "  promptsynth render --patch bell.json --midi song.mid --out song.wav"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--patch", metavar="FILE_OR_NAME", help="a patch file (.json), or a patch name in the bank")
    src.add_argument("--prompt", metavar="TEXT", help="words describing the sound; the model predicts the patch")
    p.add_argument("--out", required=True, metavar="X.wav", help="output WAV (32-bit float)")
    p.add_argument("--midi", metavar="SONG.mid", help="bounce this MIDI file instead of one note")
    p.add_argument("--pitch", type=number_arg(int, 0, 127, "--pitch"), default=60, help="MIDI note (default 60, middle C)")
    p.add_argument("--velocity", type=number_arg(int, 1, 127, "--velocity"), default=100, help="1..127 (default 100)")
    p.add_argument("--hold", type=number_arg(float, 0.0, 600.0, "--hold"), default=3.0, help="seconds held (default 3.0)")
    p.add_argument("--tail", type=number_arg(float, 0.0, 60.0, "--tail"), default=1.0, help="seconds after note-off (default 1.0)")
    p.add_argument("--sample-rate", type=number_arg(int, 8000, 192000, "--sample-rate"), default=None,
                   help="Hz (default 16000 for a note, as NSynth; a MIDI bounce uses 48000 unless set)")
    p.add_argument("--temperature", type=number_arg(float, 0.0, 3.0, "--temperature"), default=0.0,
                   help="with --prompt: 0 = the model's central patch; >0 samples variety (default 0)")
    p.add_argument("--seed", type=number_arg(int, 0, 2**31 - 1, "--seed"), default=None, help="with --temperature: random seed")
    p.add_argument("--model", metavar="DIR", help="checkpoint folder (default: the shipped model)")
    p.add_argument("--bank", metavar="DIR", help="bank folder for --patch NAME (default: the user's bank)")
    p.add_argument("--dump-json", action="store_true",
                   help="also write the patch (theta by name, prompt, source) beside the WAV as X.json")
    from server.commands.fx_args import add_effect_args

    add_effect_args(p, " (with --midi; a single note renders dry)")
    p.set_defaults(func=_render)
    from server.cli import example

    example(
        p,
        'promptsynth render --prompt "a guitar note" --out guitar.wav --dump-json',
        "promptsynth render --patch grand-piano --pitch 72 --out piano.wav",
    )
    p.description = p.description.split(" Examples:")[0]

    d = sub.add_parser("devices", help="list audio output devices")
    d.set_defaults(func=_devices)
    example(d, "promptsynth devices")

    q = sub.add_parser("params", help="list the synth parameters: name, unit, range, default")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_params)
    example(q, "promptsynth params --json")


def resolve_patch(spec: str, bank_dir: str | None = None):
    """A Patch from a file path (anything ending in .json or containing a separator) or a bank name."""
    from patches import Bank, PatchError, load_patch
    from server.cli import CliError

    try:
        if spec.endswith(".json") or os.sep in spec or "/" in spec:
            return load_patch(spec)
        return Bank(bank_dir, factory=True).load(spec)
    except PatchError as exc:
        raise CliError(str(exc)) from None


def patch_source(meta: dict, temperature: float, seed: int | None) -> dict:
    """A patch's ``source`` from a checkpoint's meta.json: the weights' sha256 (first 16
    hex digits) identifies the checkpoint, with its encoder, the temperature and seed."""
    source = {"encoder": str(meta["encoder"]["name"]), "temperature": float(temperature), "seed": seed}
    sha = meta.get("weights", {}).get("sha256")
    if isinstance(sha, str):
        source["checkpoint"] = f"sha256:{sha[:16]}"
    return source


def _predict(args):
    """The patch for ``args.prompt`` (``Predictor.patch``: the one way from words to a
    sound), named after the prompt."""
    from patches import Patch
    from server.cli import CliError

    try:
        from model import ModelError, Predictor, check_prompt

        prompt = check_prompt(args.prompt)
        predictor = Predictor.load(args.model)
        table = predictor.patch(prompt, temperature=args.temperature, seed=args.seed)
    except (ModelError, ValueError) as exc:
        raise CliError(str(exc)) from None
    name = "".join(c if c.isalnum() or c in " -_" else " " for c in prompt).strip()[:64] or "prompt"
    source = patch_source(predictor.meta, args.temperature, args.seed)
    return Patch(" ".join(name.split()), table, prompt=prompt, source=source)


def _render(args) -> int:
    import numpy as np

    from engine import render_midi_file, render_note, write_wav
    from server.cli import CliError

    patch = resolve_patch(args.patch, args.bank) if args.patch else _predict(args)
    out = Path(args.out)
    if not out.parent.exists():
        raise CliError(f"folder {out.parent} does not exist")
    from server.commands.fx_args import effect_values, send_values

    effects, sends = effect_values(args), send_values(args)
    if (effects or sends) and not args.midi:
        raise CliError("effect options (--reverb-send, --reverb-room ...) apply to a --midi bounce; "
                       "a single note renders dry")
    if args.midi:
        sr = args.sample_rate or 48000
        try:
            audio = render_midi_file(args.midi, patch.table, sample_rate=sr, effects=effects, sends=sends)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
    else:
        sr = args.sample_rate or 16000
        audio = render_note(patch.table, args.pitch, args.velocity, sample_rate=sr, hold_s=args.hold, tail_s=args.tail)
    write_wav(out, audio, sr)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    print(f"wrote {out} ({audio.shape[0] / sr:.2f} s at {sr} Hz, peak {peak:.3f}) from patch {patch.name!r}")
    if args.dump_json:
        from patches import save_patch_with_theta

        js = save_patch_with_theta(patch, _rendered_theta(patch, args, sr), out.with_suffix(".json"))
        print(f"wrote {js}")
    for k, v in patch.table.center().items():
        print(f"  {k:13s} {v:g}")
    return 0


def _rendered_theta(patch, args, sample_rate: int):
    """The seed-style theta of what was rendered: the patch's timbre at this key and
    velocity, with the note's pitch, velocity, rate and length."""
    from engine import TIMBRE_NAMES, Theta

    key, vel = (60, 100) if args.midi else (int(round(args.pitch)), int(round(args.velocity)))
    timbre = dict(zip(TIMBRE_NAMES, (float(x) for x in patch.table.lookup(key, vel))))
    return Theta.from_dict({
        **timbre,
        "pitch_midi": key,
        "velocity": vel,
        "sample_rate": sample_rate,
        "duration_s": min(max(args.hold + args.tail, 0.05), 60.0),
    })


def _devices(args) -> int:
    from engine import AudioError, list_devices
    from server.cli import CliError

    try:
        devs = list_devices()
    except AudioError as exc:
        raise CliError(str(exc)) from None
    if not devs:
        print("no audio output devices (is a JACK server or a sound card present?)")
    for d in devs:
        print(f"{d['index']:3d}  {d['name']}  [{d['hostapi']}, {d['channels']} ch, {d['default_samplerate']:g} Hz]")
    return 0


def _params(args) -> int:
    from engine import PARAMS, SCHEMA_VERSION

    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "params": [
            {"name": p.name, "unit": p.unit, "min": p.minimum, "max": p.maximum, "default": p.default,
             "scale": p.scale, "timbre": p.timbre, "doc": p.doc} for p in PARAMS]}, indent=2))
        return 0
    print(f"theta schema version {SCHEMA_VERSION} (timbre parameters are marked *)")
    for p in PARAMS:
        mark = "*" if p.timbre else " "
        print(f"{mark} {p.name:12s} {p.minimum:g}..{p.maximum:g} {p.unit}, default {p.default:g}, learned {p.scale}")
        print(f"    {p.doc}")
    return 0
