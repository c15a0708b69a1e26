"""`promptsynth patch ...`: make, list, show, render and morph the patches of a bank."""

from __future__ import annotations

import argparse
import math

from server.commands.render import number_arg, patch_source, resolve_patch

__all__ = ["register", "plot_patch", "spectra_lines"]


def register(sub: argparse._SubParsersAction) -> None:
    from server.cli import example, shared_option

    p = sub.add_parser(
        "patch",
        help="make, list, show, render and morph patches in the bank",
        description="Patches live in a bank folder (default ~/.local/share/promptsynth/patches; --bank DIR, "
        "before or after the action). NAME is a patch name in the bank (or its file name: spaces "
        "as -), or a path to a .json patch file.",
    )
    example(p, "promptsynth patch list")
    ps = p.add_subparsers(dest="patch_command", metavar="ACTION")
    ps.required = True

    n = ps.add_parser("new", help='predict a patch from words and save it: patch new "a soft flute" --name soft-flute')
    n.add_argument("prompt", help="words describing the sound")
    n.add_argument("--name", help="patch name (default: from the prompt)")
    n.add_argument("--temperature", type=number_arg(float, 0.0, 3.0, "--temperature"), default=0.0)
    n.add_argument("--seed", type=number_arg(int, 0, 2**31 - 1, "--seed"), default=None)
    n.add_argument("--force", action="store_true", help="replace a patch of the same name")
    n.set_defaults(func=_new)
    example(n, 'promptsynth patch new "a soft flute" --name soft-flute')

    ls = ps.add_parser("list", help="list the bank's patches with their program numbers")
    ls.set_defaults(func=_list)
    example(ls, "promptsynth patch list")

    sh = ps.add_parser("show", help="print a patch's values; --out X.png also draws its envelope and spectrum")
    sh.add_argument("name")
    sh.add_argument("--out", metavar="X.png", help="write a picture: envelope and spectrum of a middle-C note "
                    "(and, for a patch made from a recording that is still there, the recording's)")
    sh.set_defaults(func=_show)
    example(sh, "promptsynth patch show grand-piano --out grand-piano.png")

    r = ps.add_parser("render", help="render one note of a patch to a WAV")
    r.add_argument("name")
    r.add_argument("--out", required=True, metavar="X.wav")
    r.add_argument("--pitch", type=number_arg(int, 0, 127, "--pitch"), default=60)
    r.add_argument("--velocity", type=number_arg(int, 1, 127, "--velocity"), default=100)
    r.add_argument("--hold", type=number_arg(float, 0.0, 600.0, "--hold"), default=3.0)
    r.add_argument("--tail", type=number_arg(float, 0.0, 60.0, "--tail"), default=1.0)
    r.add_argument("--sample-rate", type=number_arg(int, 8000, 192000, "--sample-rate"), default=48000)
    r.set_defaults(func=_render)
    example(r, "promptsynth patch render grand-piano --pitch 48 --out piano-c3.wav")

    m = ps.add_parser("morph", help="save the patch between two patches: patch morph A B --t 0.5 --name AB")
    m.add_argument("a")
    m.add_argument("b")
    m.add_argument("--t", type=number_arg(float, 0.0, 1.0, "--t"), default=0.5, help="0 = A, 1 = B (default 0.5)")
    m.add_argument("--name", required=True)
    m.add_argument("--force", action="store_true", help="replace a patch of the same name")
    m.set_defaults(func=_morph)
    example(m, "promptsynth patch morph grand-piano violin --t 0.3 --name piano-violin")

    fa = ps.add_parser(
        "from-audio",
        help="make a patch from recordings of one instrument: patch from-audio NOTE.wav --name NAME",
        description="Fit a patch to one or more recordings of one instrument (each a single note): "
        "each note's pitch is detected (or --pitch), its timbre fitted by analysis-by-synthesis "
        "(a grid, then the differentiable refit), and the notes become a patch that follows the "
        "keyboard (anchored at their pitches). Saved in the bank with its source; the spectral "
        "distance says how close each fit came (0 would be the recording itself).",
    )
    fa.add_argument("audio", nargs="+", metavar="NOTE.wav", help="recordings (WAV, FLAC, ...), one note each")
    fa.add_argument("--name", required=True, help="patch name")
    fa.add_argument("--pitch", type=number_arg(int, 0, 127, "--pitch"), default=None,
                    help="MIDI note of every recording (default: detected from each)")
    fa.add_argument("--force", action="store_true", help="replace a patch of the same name")
    fa.add_argument("--json", action="store_true", help="print one JSON line: name, distance, notes")
    fa.set_defaults(func=_from_audio)
    example(fa, "promptsynth patch from-audio my-cello-c3.wav --name my-cello")

    f = ps.add_parser("factory", help="regenerate the factory bank from its prompts with the model (maintainers)")
    f.add_argument("--out", metavar="DIR", help="folder to write (default: the package's patches/factory)")
    f.set_defaults(func=_factory)
    example(f, "promptsynth patch factory --out factory-preview")

    pr = ps.add_parser("program", help="map MIDI program N (0-127) to a patch of the bank")
    pr.add_argument("number", type=number_arg(int, 0, 127, "program"))
    pr.add_argument("name")
    pr.set_defaults(func=_program)
    example(pr, "promptsynth patch program 0 violin")

    actions = [n, ls, sh, r, m, fa, f, pr]
    shared_option([p, *actions], "--bank", metavar="DIR", default=None,
                  help="bank folder (default: the user's bank)")
    shared_option([p, n, f], "--model", metavar="DIR", default=None,
                  help="checkpoint folder (default: the shipped model)")


def _bank(args):
    from patches import Bank, PatchError
    from server.cli import CliError

    try:
        bank = Bank(args.bank, factory=True)
    except (PatchError, OSError) as exc:
        raise CliError(str(exc)) from None
    return bank


def _save(args, patch) -> int:
    from patches import PatchError
    from server.cli import CliError

    bank = _bank(args)
    try:
        used = bank.save(patch, overwrite=args.force)
    except (PatchError, OSError) as exc:
        raise CliError(str(exc)) from None
    note = "" if used == patch.name else f" ({patch.name!r} exists; use --force to replace it)"
    print(f"saved {used!r} in {bank.folder}{note}")
    _print_timbre(patch.table)
    return 0


def _new(args) -> int:
    from patches import Patch, PatchError
    from server.cli import CliError
    from server.commands.render import _predict

    made = _predict(args)
    try:
        patch = Patch(args.name or made.name, made.table, made.prompt, made.source)
    except PatchError as exc:
        raise CliError(str(exc)) from None
    return _save(args, patch)


def _from_audio(args) -> int:
    import json
    import os

    from patches import Patch, PatchError
    from server.cli import CliError

    try:
        from training.from_audio import AudioError, fit_recordings
    except ImportError as exc:
        raise CliError(f"patch from-audio needs the training extras ({exc}); pip install -e '.[train]'") from None
    for path in args.audio:
        if not os.path.isfile(path):
            raise CliError(f"{path}: no such file")
    say = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    try:
        import torch

        torch.set_num_threads(1)
        fit = fit_recordings(args.audio, pitch=args.pitch, progress=say)
        source = {"audio": [os.path.abspath(p) for p in args.audio], "fit_distance": round(fit.distance, 4)}
        patch = Patch(args.name, fit.table, prompt=None, source=source)
    except (AudioError, PatchError) as exc:
        raise CliError(str(exc)) from None
    bank = _bank(args)
    try:
        used = bank.save(patch, overwrite=args.force)
    except (PatchError, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"name": used, "distance": fit.distance, "notes": [
            {"path": n.path, "pitch": n.pitch, "pitch_detected": n.pitch_detected, "distance": n.distance}
            for n in fit.notes]}))
        return 0
    note = "" if used == args.name else f" ({args.name!r} exists; use --force to replace it)"
    print(f"saved {used!r} in {bank.folder}{note}")
    for n in fit.notes:
        how = "detected" if n.pitch_detected else "given"
        print(f"  {os.path.basename(n.path)}: MIDI note {n.pitch} ({how}), spectral distance {n.distance:.3f}")
    print(f"  mean distance {fit.distance:.3f} (0: the recording itself; two different "
          "instruments are 0.9-2.0 apart, silence 1.3)")
    _print_timbre(patch.table)
    return 0


def _list(args) -> int:
    bank = _bank(args)
    progs = {v: k for k, v in bank.programs().items()}
    if not bank.names():
        print(f"no patches in {bank.folder}")
    for name in bank.names():
        p = bank.load(name)
        prog = f"{progs[name]:3d}" if name in progs else "  -"
        print(f"{prog}  {name}" + (f"  ({p.prompt})" if p.prompt else ""))
    for err in bank.errors:
        print(f"skipped: {err}")
    return 0


#: Timbre values ``patch show`` prints with the carrier's spectra, not in the list.
_CARRIER_VALUES = ("onset_s", "darken_db", "darken_s", "env_curve")
#: Eighths of a character cell, for the spectra's bars (and where the terminal cannot
#: print those, plain characters).
_BLOCKS = " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
_ASCII_BLOCKS = " ..--==##"
#: Rows of the spectra's bars: each 20 dB high, from DB_FLOOR (-80) to 0.
_ROWS = 4


def _print_timbre(table) -> None:
    """The patch's timbre at key 60, velocity 100 (and whether it changes over keys):
    its values, then its carrier's spectra drawn (:func:`spectra_lines`)."""
    import sys

    from engine import param
    from engine.schema import HELD_NAMES, ONSET_NAMES

    if not table.is_flat:
        print(f"  (a key table: {len(table.keys)} keys x {len(table.velocities)} velocities; "
              "values at key 60, velocity 100)")
    skip = set(ONSET_NAMES) | set(HELD_NAMES) | set(_CARRIER_VALUES)
    for name, value in table.center().items():
        if name not in skip:
            print(f"  {name:13s} {value:<10.4g} {param(name).unit}")
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        _BLOCKS.encode(encoding)
        blocks = _BLOCKS
    except (UnicodeEncodeError, LookupError):
        blocks = _ASCII_BLOCKS
    for line in spectra_lines(table.center(), blocks):
        print(line)


def _levels_text(levels) -> str:
    """Levels in dB as short numbers, silent ones ``off``, a silent tail said once."""
    from engine.schema import DB_FLOOR

    last = max((k for k, x in enumerate(levels) if x > DB_FLOOR), default=-1)
    words = ["off" if x <= DB_FLOOR else f"{x + 0.0:.3g}" for x in levels[: last + 1]]
    if last + 1 < len(levels):
        first = last + 2
        words.append(f"(h{first}..h{len(levels)} off)" if first < len(levels) else f"(h{first} off)")
    return " ".join(words)


def spectra_lines(centre: dict, blocks: str = _BLOCKS) -> list[str]:
    """The carrier's spectra of a timbre (``KeyTable.center()``: key 60, velocity 100)
    as text: a bar a harmonic (1..32, left to right) for the onset and the held spectrum,
    each bar as high as its level (-80 dB: none, 0 dB: four rows, a row 20 dB), then the
    levels in numbers and how the spectra move (onset_s, darken_db, darken_s) and the
    envelope's curve (env_curve). A patch whose spectra are the default says it plays a
    sine."""
    from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES

    onset = [centre[n] for n in ONSET_NAMES]
    held = [centre[n] for n in HELD_NAMES]
    sine = [0.0] + [DB_FLOOR] * (N_HARMONICS - 1)
    curve = (f"  env_curve     {centre['env_curve']:<10.4g} decay and release: 0 linear in amplitude, "
             "1 linear in dB")
    if onset == sine and held == sine:
        return ["  carrier       sine (onset and held spectra at their default: harmonic 1 only)", curve]

    def bars(levels, row: int) -> str:
        out = []
        for x in levels:
            eighths = 0 if x <= DB_FLOOR else round((x - DB_FLOOR) / -DB_FLOOR * _ROWS * 8)
            out.append(blocks[min(8, max(0, eighths - 8 * row))])
        return "".join(out)

    width = N_HARMONICS
    axis = [" "] * width
    for k in (1, 5, 10, 15, 20, 25, 30):
        label = str(k)
        axis[k - 1 : k - 1 + len(label)] = label
    axis_text = "".join(axis)[:width]
    lines = [f"  carrier spectra at key 60, velocity 100: a bar a harmonic (1..{N_HARMONICS}), "
             "a row 20 dB (up to the level at its left)",
             f"  {'':>5s}  {'onset':<{width}s}   {'held':<{width}s}"]
    step = -DB_FLOOR / _ROWS
    for row in range(_ROWS - 1, -1, -1):
        top = DB_FLOOR + step * (row + 1)
        lines.append(f"  {top:>5.0f} |{bars(onset, row)}| |{bars(held, row)}|")
    lines.append(f"  {'':>5s}  {axis_text}   {axis_text}")
    lines.append(f"  onset dB      {_levels_text(onset)}")
    lines.append(f"  held dB       {_levels_text(held)}")
    lines.append(f"  onset_s       {centre['onset_s']:<10.4g} s: onset crossfades to held over it")
    lines.append(f"  darken_db     {centre['darken_db']:<10.4g} dB per octave of harmonic number: how "
                 "much darker held becomes")
    lines.append(f"  darken_s      {centre['darken_s']:<10.4g} s: by then")
    lines.append(curve)
    return [line.rstrip() for line in lines]


def _show(args) -> int:
    patch = resolve_patch(args.name, args.bank)
    print(f"{patch.name}" + (f"  prompt: {patch.prompt}" if patch.prompt else ""))
    if patch.source:
        print("  source: " + ", ".join(f"{k}={v}" for k, v in patch.source.items()))
    _print_timbre(patch.table)
    if args.out:
        plot_patch(patch, args.out)
        print(f"wrote {args.out}")
    return 0


def plot_patch(patch, path: str, sample_rate: int = 16000) -> None:
    """Draw the envelope and spectrum of a note of ``patch`` into a PNG: middle C, or, for
    a patch made from recordings (``source.audio``) of which the first is still there, a
    note at that recording's pitch beside the recording itself."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from engine import render_note

    centre = patch.table.center()
    hold = 1.5
    tail = max(0.3, min(centre["release_s"] * 1.2, 3.0))
    recording, pitch = None, 60
    audio = [a for a in patch.source.get("audio", []) if os.path.isfile(a)]
    if audio:
        try:
            from training.from_audio import AudioError, detect_pitch, read_note

            recording = read_note(audio[0])
            pitch = detect_pitch(recording) or 60
            hold, tail = 3.0, 1.0
        except (ImportError, AudioError):
            recording = None
    y = render_note(patch.table, pitch, 100, sample_rate=sample_rate, hold_s=hold, tail_s=tail)

    def envelope(x):
        hop = 64
        frames = len(x) // hop
        rms = np.sqrt(np.mean(x[: frames * hop].reshape(frames, hop) ** 2, axis=1)) * math.sqrt(2)
        return np.arange(frames) * hop / sample_rate, rms

    def spectrum_db(x):
        seg = x[int(0.1 * sample_rate): int(hold * sample_rate)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        return np.fft.rfftfreq(len(seg), 1 / sample_rate), 20 * np.log10(spec / (spec.max() + 1e-12) + 1e-6)

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6))
    t = np.arange(len(y)) / sample_rate
    a1.plot(t, y / (np.max(np.abs(y)) + 1e-12), color="0.85", linewidth=0.5, label="signal")
    a1.plot(*_norm(envelope(y)), color="C0", label="patch envelope")
    if recording is not None:
        a1.plot(*_norm(envelope(recording)), color="C2", label="recording envelope")
    a1.axvline(hold, color="C3", linestyle="--", linewidth=1, label="note-off")
    a1.set_xlabel("time (s)")
    a1.set_ylabel("level (peak 1)")
    a1.set_title(f"{patch.name}: MIDI note {pitch}, velocity 100")
    a1.legend(loc="upper right", fontsize=8)
    a2.plot(*spectrum_db(y), color="C1", linewidth=0.8, label="patch")
    if recording is not None:
        a2.plot(*spectrum_db(recording), color="C2", linewidth=0.8, alpha=0.8, label="recording")
        a2.legend(loc="upper right", fontsize=8)
    a2.set_xlim(0, min(8000, sample_rate / 2))
    a2.set_ylim(-90, 3)
    a2.set_xlabel("frequency (Hz)")
    a2.set_ylabel("dB")
    a2.set_title(f"spectrum while held (ratio {centre['mod_ratio']:.3g}, index {centre['mod_index']:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _norm(curve):
    x, v = curve
    return x, v / (v.max() + 1e-12)


def _render(args) -> int:
    from engine import render_note, write_wav

    patch = resolve_patch(args.name, args.bank)
    audio = render_note(patch.table, args.pitch, args.velocity, sample_rate=args.sample_rate, hold_s=args.hold, tail_s=args.tail)
    write_wav(args.out, audio, args.sample_rate)
    print(f"wrote {args.out} ({len(audio) / args.sample_rate:.2f} s) from patch {patch.name!r}")
    return 0


def _morph(args) -> int:
    from patches import Patch, PatchError, morph
    from server.cli import CliError

    a = resolve_patch(args.a, args.bank)
    b = resolve_patch(args.b, args.bank)
    try:
        patch = Patch(args.name, morph(a, b, args.t), prompt=f"{a.name} -> {b.name} at {args.t:g}")
    except PatchError as exc:
        raise CliError(str(exc)) from None
    return _save(args, patch)


def _program(args) -> int:
    from patches import PatchError
    from server.cli import CliError

    bank = _bank(args)
    try:
        bank.set_program(args.number, args.name)
    except PatchError as exc:
        raise CliError(str(exc)) from None
    print(f"program {args.number} -> {args.name}")
    return 0


def _spectrum_cell(t: dict) -> str:
    """The factory table's summary of a patch's held spectrum and envelope curve."""
    from engine.schema import DB_FLOOR, N_HARMONICS

    held = [t[f"held_h{k}"] for k in range(1, N_HARMONICS + 1)]
    onset = [t[f"onset_h{k}"] for k in range(1, N_HARMONICS + 1)]
    if held == onset and all(v <= DB_FLOOR for v in held[1:]):
        cell = "sine"
    else:
        top = max(held)
        cell = (f"{sum(v > DB_FLOOR for v in held)} harmonics, h2 {held[1] - top:.0f} dB, "
                f"h3 {held[2] - top:.0f} dB")
        if t["darken_db"] > 0:
            cell += f", darkens {t['darken_db']:.0f} dB/oct"
    if t["env_curve"] > 0:
        cell += f", curve {t['env_curve']:.2f}"
    return cell


def _op3_cell(t: dict) -> str:
    """The third operator of a patch's centre, for a table: '-' when off."""
    if t["op3_index"] == 0.0 and t["op3_peak"] == 0.0:
        return "-"
    layout = ("parallel", "stack", "carrier 2")[int(round(t["op3_layout"]))]
    return f"{layout}, x{t['op3_ratio']:g}, {t['op3_index']:.2g} (+{t['op3_peak']:.2g})"


def _band_cell(t: dict) -> str:
    """The noise band of a patch's centre, for a table: '-' when off."""
    if t["band_level"] == 0.0:
        return "-"
    return f"{t['band_level']:.2g} at x{t['band_centre']:.2g}, {t['band_width']:.2g} wide"


def _factory(args) -> int:
    import json
    from pathlib import Path

    from patches import Bank, Patch, save_patch
    from patches.bank import FACTORY_DIR, file_stem
    from patches.factory_prompts import FACTORY_PROMPTS
    from server.cli import CliError

    try:
        from model import ModelError, Predictor

        predictor = Predictor.load(args.model)
        tables = predictor.patches([p for _, _, p in FACTORY_PROMPTS])
    except ModelError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out) if args.out else FACTORY_DIR
    out.mkdir(parents=True, exist_ok=True)
    source = patch_source(predictor.meta, 0.0, None)
    keep = set()
    rows = []
    for (program, name, prompt), table in zip(FACTORY_PROMPTS, tables):
        patch = Patch(name, table, prompt=prompt, source=source)
        save_patch(patch, out / f"{file_stem(name)}.json", overwrite=True)
        keep.add(f"{file_stem(name)}.json")
        rows.append((program, name, prompt, table.center()))
    for stale in out.glob("*.json"):
        if stale.name not in keep and stale.name != "bank.json":
            stale.unlink()
    programs = {str(p): n for p, n, _, _ in sorted(rows)}
    (out / "bank.json").write_text(json.dumps({"format": "promptsynth-bank", "programs": programs}, indent=2) + "\n")
    lines = [
        "# The factory bank",
        "",
        "Made by `promptsynth patch factory` from the prompts in `patches/factory_prompts.py` with the",
        "shipped model (temperature 0). Program numbers follow General MIDI, so a GM keyboard's program",
        "change selects the matching sound. Regenerate after training a new default model.",
        "",
        "Each patch holds a key table (its timbre per key and velocity) when the model is key-tracked;",
        "the columns show its values at key 60, velocity 100 (index peak and noise level: v2's",
        "struck brightness and breath, with their decay times in the files; third operator: v3's,",
        "its layout, ratio and index (+ peak), or - when off; noise band: v4's, its level, centre",
        "and width as multiples of the pitch, or - when off; spectrum: schema 5's held spectrum,",
        "its sounding harmonics and the levels of harmonics 2 and 3 against the loudest, how much it",
        "darkens (dB per octave of harmonic number) and the envelope's curve (1: decay linear in",
        "dB), or sine; `promptsynth patch show NAME` draws both spectra).",
        "",
        "| program | name | prompt | attack s | decay s | sustain | release s | ratio | index | index peak | noise "
        "| third operator | noise band | spectrum |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for program, name, prompt, t in sorted(rows, key=lambda r: r[0]):
        lines.append(f"| {program} | {name} | {prompt} | {t['attack_s']:.3g} | {t['decay_s']:.3g} | "
                     f"{t['sustain']:.2f} | {t['release_s']:.3g} | {t['mod_ratio']:.3g} | {t['mod_index']:.3g} | "
                     f"{t['index_peak']:.2g} | {t['noise_level']:.2g} | {_op3_cell(t)} | {_band_cell(t)} | "
                     f"{_spectrum_cell(t)} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    bank = Bank(out, create=False)
    print(f"wrote {len(rows)} patches and bank.json to {out}" + (f"; problems: {bank.errors}" if bank.errors else ""))
    return 0
