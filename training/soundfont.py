"""General MIDI notes rendered from a SoundFont: named instruments NSynth lacks.

FluidR3_GM (Debian/Ubuntu ``fluid-soundfont-gm``) through pyfluidsynth + libfluidsynth3,
falling back to the small TimGM6mb SoundFont that ``pretty_midi`` ships. Each note is
held ``HOLD_S`` (3.0 s) then released for ``TAIL_S`` (1.0 s), mono, 16 kHz, like NSynth.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from training.gm import GM_PROGRAMS
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S, Note
from training.presets import Preset, describe, installed_soundfonts, list_presets

__all__ = [
    "find_soundfont",
    "render_gm_note",
    "render_gm_notes",
    "render_presets",
    "render_font_shard",
    "FLUIDR3_PATHS",
]

FLUIDR3_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")

#: Below this peak a render is silence: the program or preset has no sample at that key.
SILENT_PEAK = 1e-4



def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: ``path``, else FluidR3_GM, else pretty_midi's TimGM6mb."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"SoundFont {p} does not exist")
        return p
    for cand in FLUIDR3_PATHS:
        if Path(cand).is_file():
            return Path(cand)
    try:
        import pretty_midi

        p = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        if p.is_file():
            return p
    except ImportError:
        pass
    raise FileNotFoundError(
        "no SoundFont found: install fluid-soundfont-gm (apt) or pretty_midi, or pass one"
    )


class _Synth:
    def __init__(self, sf2: Path, sample_rate: int) -> None:
        import fluidsynth

        self.sample_rate = sample_rate
        self.fs = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
        self.fs.setting("synth.reverb.active", 0)
        self.fs.setting("synth.chorus.active", 0)
        self.sfid = self.fs.sfload(str(sf2))
        if self.sfid < 0:
            raise RuntimeError(f"fluidsynth could not load {sf2}")

    def note(
        self, program: int, pitch: int, velocity: int, hold_s: float, tail_s: float, bank: int = 0
    ) -> np.ndarray:
        fs = self.fs
        fs.program_select(0, self.sfid, int(bank), int(program))
        fs.noteon(0, int(pitch), int(velocity))
        hold = fs.get_samples(int(round(hold_s * self.sample_rate)))
        fs.noteoff(0, int(pitch))
        tail = fs.get_samples(int(round(tail_s * self.sample_rate)))
        fs.all_sounds_off(0)
        fs.get_samples(int(0.2 * self.sample_rate))  # let the voice die before the next note
        st = np.concatenate([hold, tail]).astype(np.float32).reshape(-1, 2)
        return st.mean(axis=1) / 32768.0

    def close(self) -> None:
        self.fs.delete()


def render_gm_note(
    program: int,
    pitch: int,
    velocity: int,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    hold_s: float = HOLD_S,
    tail_s: float = TAIL_S,
) -> np.ndarray:
    """One GM note, ``[round((hold_s + tail_s) * sample_rate)]`` float32 mono."""
    synth = _Synth(find_soundfont(soundfont), sample_rate)
    try:
        return synth.note(program, pitch, velocity, hold_s, tail_s)
    finally:
        synth.close()


def render_gm_notes(
    out_dir: str | os.PathLike,
    programs: Iterable[int] = range(128),
    pitches: Sequence[int] = (48, 60, 72),
    velocities: Sequence[int] = (100,),
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = False,
) -> list[Note]:
    """Render every (program, pitch, velocity) to ``out_dir/audio/gm_<prog>-<pitch>-<vel>.wav``.

    Silent renders (a program with no sample at that pitch) are skipped.
    """
    import soundfile as sf

    sf2 = find_soundfont(soundfont)
    audio_dir = Path(out_dir) / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    combos = [(p, k, v) for p in programs for k in pitches for v in velocities]
    if progress:
        from tqdm import tqdm

        combos = tqdm(combos, desc=f"render {sf2.name}", unit="note")
    synth = _Synth(sf2, sample_rate)
    notes = []
    try:
        for prog, pitch, vel in combos:
            y = synth.note(prog, pitch, vel, HOLD_S, TAIL_S)
            if np.max(np.abs(y)) < SILENT_PEAK:
                continue
            name, family, source = GM_PROGRAMS[prog]
            note_id = f"gm_{prog:03d}-{pitch:03d}-{vel:03d}"
            path = audio_dir / f"{note_id}.wav"
            sf.write(str(path), y, sample_rate, subtype="PCM_16")
            notes.append(
                Note(
                    note_id=note_id,
                    audio_path=str(path),
                    pitch=int(pitch),
                    velocity=int(vel),
                    instrument=f"gm_{prog:03d}",
                    family=family,
                    source=source,
                    name=name,
                    dataset="gm",
                    qualities=[],
                    sample_rate=sample_rate,
                )
            )
    finally:
        synth.close()
    return notes


def render_font_shard(
    font_path: str, presets: Sequence[Sequence], pitches: Sequence[int], velocities: Sequence[int],
    audio_dir: str, sample_rate: int,
) -> list[dict]:
    """A worker's task: render ``presets`` (``(font, bank, program, title)`` each) of the
    font at ``font_path`` at every (pitch, velocity) into ``audio_dir``; returns the
    sounding notes' dicts. A note already rendered (its file, or its ``.silent`` marker)
    is kept as it is."""
    import soundfile as sf

    presets = [Preset(str(f), int(b), int(p), str(t)) for f, b, p, t in presets]
    audio_dir = Path(audio_dir)
    synth = None
    out = []
    try:
        for preset in presets:
            desc = describe(preset)
            for pitch in pitches:
                for vel in velocities:
                    note_id = f"{preset.instrument}-{pitch:03d}-{vel:03d}"
                    path = audio_dir / f"{note_id}.wav"
                    silent = audio_dir / f"{note_id}.silent"
                    if silent.exists():
                        continue
                    if not path.exists():
                        if synth is None:
                            synth = _Synth(Path(font_path), sample_rate)
                        y = synth.note(preset.program, pitch, vel, HOLD_S, TAIL_S, bank=preset.bank)
                        if np.max(np.abs(y)) < SILENT_PEAK:
                            silent.touch()
                            continue
                        tmp = path.with_suffix(".part.wav")
                        sf.write(str(tmp), y, sample_rate, subtype="PCM_16")
                        os.replace(tmp, path)
                    out.append(
                        Note(
                            note_id=note_id,
                            audio_path=str(path),
                            pitch=int(pitch),
                            velocity=int(vel),
                            instrument=preset.instrument,
                            family=desc.family,
                            source=desc.source,
                            name=desc.name,
                            dataset="soundfont",
                            sample_rate=sample_rate,
                            aliases=[desc.gm_name] if desc.gm_name else [],
                        ).to_dict()
                    )
    finally:
        if synth is not None:
            synth.close()
    return out


def render_presets(
    out_dir: str | os.PathLike,
    fonts: Sequence | None = None,
    pitches: Sequence[int] = (36, 48, 60, 72, 84),
    velocities: Sequence[int] = (100,),
    executor=None,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = False,
) -> list[Note]:
    """Render every melodic preset of ``fonts`` (:class:`training.presets.SoundFont`;
    default: every installed font of :data:`training.presets.SOUNDFONTS`) at each pitch
    and velocity into ``out_dir/audio/sf/``, on ``executor``
    (:class:`training.executor.Executor`; default: local processes, one per CPU), 16
    presets a shard, with a progress bar.

    Resumable: a shard whose notes are listed in ``out_dir/shards/`` is not rendered
    again, nor a note whose file (or silence marker) exists, so a run stopped half-way
    goes on where it stopped. Silent renders are skipped.
    """
    from training.executor import Shard, digest, run_shards

    fonts = installed_soundfonts() if fonts is None else list(fonts)
    if not fonts:
        raise FileNotFoundError(
            "no SoundFont installed: apt install fluid-soundfont-gm fluid-soundfont-gs "
            "musescore-general-soundfont timgm6mb-soundfont csound-soundfont opl3-soundfont, "
            "or give your own .sf2/.sf3 files"
        )
    audio_dir = Path(out_dir) / "audio" / "sf"
    audio_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for font in fonts:
        presets = [(p.font, p.bank, p.program, p.title) for p in list_presets(font)]
        size = os.path.getsize(font.path)
        # 16 presets a shard: the work spreads over the workers, a font is loaded once
        # per shard (a few hundred ms for the largest), and the bar moves.
        for i in range(0, len(presets), 16):
            args = (font.path, presets[i : i + 16], tuple(pitches), tuple(velocities), str(audio_dir), sample_rate)
            shards.append(Shard(args, len(args[1]), digest("render", size, *args)))
    run = run_shards(render_font_shard, shards, Path(out_dir) / "shards", "render", executor,
                     progress=progress, unit="preset")
    return [Note.from_dict(d) for res in run.results for d in res]
