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

from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S, Note

__all__ = [
    "GM_PROGRAMS",
    "find_soundfont",
    "render_gm_note",
    "render_gm_notes",
    "render_presets",
    "FLUIDR3_PATHS",
]

FLUIDR3_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")

#: Below this peak a render is silence: the program or preset has no sample at that key.
SILENT_PEAK = 1e-4

# (name in words, NSynth family or GM class where none fits, source), by GM program 0..127.
_A, _E, _S = "acoustic", "electronic", "synthetic"
# fmt: off
GM_PROGRAMS: tuple[tuple[str, str, str], ...] = (
    ("grand piano", "keyboard", _A), ("bright piano", "keyboard", _A),
    ("electric grand piano", "keyboard", _E), ("honky-tonk piano", "keyboard", _A),
    ("electric piano", "keyboard", _E), ("fm electric piano", "keyboard", _E),
    ("harpsichord", "keyboard", _A), ("clavinet", "keyboard", _E),
    ("celesta", "mallet", _A), ("glockenspiel", "mallet", _A), ("music box", "mallet", _A),
    ("vibraphone", "mallet", _A), ("marimba", "mallet", _A), ("xylophone", "mallet", _A),
    ("tubular bells", "mallet", _A), ("dulcimer", "string", _A),
    ("drawbar organ", "organ", _E), ("percussive organ", "organ", _E),
    ("rock organ", "organ", _E), ("church organ", "organ", _A), ("reed organ", "organ", _A),
    ("accordion", "reed", _A), ("harmonica", "reed", _A), ("tango accordion", "reed", _A),
    ("nylon string guitar", "guitar", _A), ("steel string guitar", "guitar", _A),
    ("jazz guitar", "guitar", _E), ("clean electric guitar", "guitar", _E),
    ("muted electric guitar", "guitar", _E), ("overdriven guitar", "guitar", _E),
    ("distortion guitar", "guitar", _E), ("guitar harmonics", "guitar", _E),
    ("acoustic bass", "bass", _A), ("fingered electric bass", "bass", _E),
    ("picked electric bass", "bass", _E), ("fretless bass", "bass", _E),
    ("slap bass", "bass", _E), ("funky slap bass", "bass", _E),
    ("synth bass", "bass", _S), ("analog synth bass", "bass", _S),
    ("violin", "string", _A), ("viola", "string", _A), ("cello", "string", _A),
    ("contrabass", "string", _A), ("tremolo strings", "string", _A),
    ("pizzicato strings", "string", _A), ("harp", "string", _A), ("timpani", "mallet", _A),
    ("string ensemble", "string", _A), ("slow string ensemble", "string", _A),
    ("synth strings", "string", _S), ("analog synth strings", "string", _S),
    ("choir aahs", "vocal", _A), ("voice oohs", "vocal", _A), ("synth choir", "vocal", _S),
    ("orchestra hit", "brass", _S),
    ("trumpet", "brass", _A), ("trombone", "brass", _A), ("tuba", "brass", _A),
    ("muted trumpet", "brass", _A), ("french horn", "brass", _A),
    ("brass section", "brass", _A), ("synth brass", "brass", _S),
    ("analog synth brass", "brass", _S),
    ("soprano sax", "reed", _A), ("alto sax", "reed", _A), ("tenor sax", "reed", _A),
    ("baritone sax", "reed", _A), ("oboe", "reed", _A), ("english horn", "reed", _A),
    ("bassoon", "reed", _A), ("clarinet", "reed", _A),
    ("piccolo", "flute", _A), ("flute", "flute", _A), ("recorder", "flute", _A),
    ("pan flute", "flute", _A), ("blown bottle", "flute", _A), ("shakuhachi", "flute", _A),
    ("whistle", "flute", _A), ("ocarina", "flute", _A),
    ("square lead", "synth lead", _S), ("sawtooth lead", "synth lead", _S),
    ("calliope lead", "synth lead", _S), ("chiff lead", "synth lead", _S),
    ("charang lead", "synth lead", _S), ("voice lead", "synth lead", _S),
    ("fifths lead", "synth lead", _S), ("bass and lead", "synth lead", _S),
    ("new age pad", "synth pad", _S), ("warm pad", "synth pad", _S),
    ("polysynth pad", "synth pad", _S), ("choir pad", "synth pad", _S),
    ("bowed pad", "synth pad", _S), ("metallic pad", "synth pad", _S),
    ("halo pad", "synth pad", _S), ("sweep pad", "synth pad", _S),
    ("rain effect", "synth effect", _S), ("soundtrack effect", "synth effect", _S),
    ("crystal effect", "synth effect", _S), ("atmosphere effect", "synth effect", _S),
    ("brightness effect", "synth effect", _S), ("goblins effect", "synth effect", _S),
    ("echoes effect", "synth effect", _S), ("sci-fi effect", "synth effect", _S),
    ("sitar", "guitar", _A), ("banjo", "guitar", _A), ("shamisen", "guitar", _A),
    ("koto", "string", _A), ("kalimba", "mallet", _A), ("bagpipe", "reed", _A),
    ("fiddle", "string", _A), ("shanai", "reed", _A),
    ("tinkle bell", "mallet", _A), ("agogo", "percussion", _A), ("steel drums", "mallet", _A),
    ("woodblock", "percussion", _A), ("taiko drum", "percussion", _A),
    ("melodic tom", "percussion", _A), ("synth drum", "percussion", _S),
    ("reverse cymbal", "sound effect", _S),
    ("guitar fret noise", "sound effect", _A), ("breath noise", "sound effect", _A),
    ("seashore", "sound effect", _A), ("bird tweet", "sound effect", _A),
    ("telephone ring", "sound effect", _E), ("helicopter", "sound effect", _A),
    ("applause", "sound effect", _A), ("gunshot", "sound effect", _A),
)
# fmt: on
assert len(GM_PROGRAMS) == 128


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


def _render_font_presets(job: tuple) -> list[dict]:
    """Worker: render ``presets`` of one font at every (pitch, velocity) into ``audio_dir``;
    a note already rendered (its file, or its ``.silent`` marker) is kept as it is."""
    import soundfile as sf

    from training.presets import describe

    font_path, presets, pitches, velocities, audio_dir, sample_rate = job
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
    workers: int | None = None,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = False,
) -> list[Note]:
    """Render every melodic preset of ``fonts`` (default: every installed font of
    :data:`training.presets.SOUNDFONTS`) at each pitch and velocity into
    ``out_dir/audio/sf/``, in ``workers`` processes (default: CPUs), with a progress bar.

    Resumable: a note whose file (or silence marker) exists is not rendered again, so a
    run stopped half-way goes on where it stopped. Silent renders are skipped.
    """
    from concurrent.futures import ProcessPoolExecutor

    from training.presets import installed_soundfonts, list_presets

    fonts = installed_soundfonts() if fonts is None else list(fonts)
    if not fonts:
        raise FileNotFoundError(
            "no SoundFont installed: apt install fluid-soundfont-gm fluid-soundfont-gs "
            "musescore-general-soundfont timgm6mb-soundfont csound-soundfont opl3-soundfont"
        )
    audio_dir = Path(out_dir) / "audio" / "sf"
    audio_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for font in fonts:
        presets = list_presets(font)
        # Chunks of 16 presets: the work spreads over the workers, a font is loaded once
        # per chunk (a few hundred ms for the largest), and the bar moves.
        for i in range(0, len(presets), 16):
            jobs.append((font.path, presets[i : i + 16], tuple(pitches), tuple(velocities),
                         str(audio_dir), sample_rate))
    n_presets = sum(len(j[1]) for j in jobs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_presets, desc=f"render {len(fonts)} SoundFonts", unit="preset")
    notes: list[Note] = []
    workers = max(1, workers or os.cpu_count() or 1)
    ex = None
    try:
        if workers == 1:
            results = map(_render_font_presets, jobs)
        else:
            import multiprocessing

            # Spawned, not forked: libfluidsynth in this process (the preset listing)
            # leaves state a forked child can deadlock on.
            ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            results = ex.map(_render_font_presets, jobs)
        for job, res in zip(jobs, results):
            notes += [Note.from_dict(d) for d in res]
            if bar:
                bar.update(len(job[1]))
    finally:
        if ex is not None:
            ex.shutdown(cancel_futures=True)
        if bar:
            bar.close()
    return notes
