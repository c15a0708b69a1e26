"""The sound library: words -> the patch whose sound comes closest to the real notes of
the instruments the words describe.

A checkpoint may carry a library (``library.npz``, built by ``training.library``): a set
of candidate patches (key tables: one per training instrument, from its fitted labels)
and, precomputed, the log-mel distance of each candidate's renders to each training
instrument's notes (``distance [n_candidates, n_instruments]``: real recordings and
SoundFont renders, each rendered at the note's pitch and velocity), beside every
instrument's captions embedded by the checkpoint's text encoder.

Choosing, once per prompt (well under a millisecond after the embedding):

1. each instrument's similarity to the prompt is that of its nearest caption (cosine);
2. the ``top_k`` most similar instruments (among equally similar ones, real recordings
   first) are the ones the words describe; within the real ones and within the rendered
   ones, weights fall off as ``exp((s - s_max) / tau)``;
   the real recordings together get ``real_share * exp((s_real_max - s_max) / tau)`` of
   the weight (real notes are the target of the sound wherever the words reach one), the
   renders the rest;
3. each candidate's score is its weighted mean distance to those instruments' notes,
   minus ``contrast`` times its mean distance to every real instrument's notes (a sound
   close to everything, a bland average, gains nothing);
4. the lowest score wins, among the tables of the ``pool`` instruments most like the
   words, ties broken as in 2 (a sound near many sounds at once would otherwise win
   unrelated prompts).

Nothing here renders audio or imports torch: a choice is a few small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import TIMBRE_NAMES, TIMBRE_SPACE, KeyTable

__all__ = ["LIBRARY_FILE", "LibraryParams", "SoundLibrary", "instrument_title", "instrument_titles"]

LIBRARY_FILE = "library.npz"

#: How each SoundFont of the training data (``training.presets.SOUNDFONTS``, by key) is
#: called where a person reads it.
SOUNDFONT_TITLES = {
    "fluidr3_gm": "FluidR3 GM",
    "fluidr3_gs": "FluidR3 GS",
    "musescore_general": "MuseScore General",
    "timgm6mb": "TimGM6mb",
    "sf_gmbank": "sf_GMbank",
    "opl3_fm": "OPL-3 FM",
}
_SOUND_OF = "the sound of "


def instrument_title(instrument: str, name: str | None = None) -> str:
    """A training instrument's name as a person reads it, from its id and, where known,
    its own name in words (a SoundFont preset's, as its notes' ``name`` field has it).

    ``"sf-fluidr3_gm-000-071"`` with ``"clarinet"`` -> ``"Clarinet, FluidR3 GM"`` (a bank
    other than 0 is named: ``"Ukulele, FluidR3 GM bank 8"``); without a name, the preset
    by its numbers (``"Program 71, FluidR3 GM"``). An NSynth id,
    ``"bass_electronic_027"`` -> ``"Electronic bass 027, NSynth"``. Anything else: the
    name, or the id as it is.

    >>> instrument_title("sf-fluidr3_gm-000-071", "clarinet")
    'Clarinet, FluidR3 GM'
    >>> instrument_title("synth_lead_synthetic_000")
    'Synthetic synth lead 000, NSynth'
    """
    parts = instrument.split("-")
    if len(parts) == 4 and parts[0] == "sf" and parts[2].isdigit() and parts[3].isdigit():
        font = SOUNDFONT_TITLES.get(parts[1], parts[1])
        bank = int(parts[2])
        if bank:
            font += f" bank {bank}"
        own = name.strip() if name and name.strip() else f"program {int(parts[3])}"
        return f"{own[0].upper()}{own[1:]}, {font}"
    words = instrument.rsplit("_", 2)
    if len(words) == 3 and words[2].isdigit() and words[1] in ("acoustic", "electronic", "synthetic"):
        family = words[0].replace("_", " ")
        return f"{words[1].capitalize()} {family} {words[2]}, NSynth"
    return name.strip() if name and name.strip() else instrument


def instrument_titles(instruments, names=None) -> list[str]:
    """:func:`instrument_title` of each id (``names``: each one's own name or None), made
    distinct: where two presets share a name (sf_GMbank's MT-32 bank has four "electric
    piano"s), each is told apart by its program number."""
    names = [None] * len(instruments) if names is None else list(names)
    titles = [instrument_title(str(k), n) for k, n in zip(instruments, names)]
    seen: dict[str, int] = {}
    for t in titles:
        seen[t] = seen.get(t, 0) + 1
    out = []
    for k, t in zip(instruments, titles):
        parts = str(k).split("-")
        if seen[t] > 1 and len(parts) == 4 and parts[0] == "sf" and parts[3].isdigit():
            t = f"{t} program {int(parts[3])}"
        out.append(t)
    return out


def _name_from_captions(captions) -> str | None:
    """An instrument's own name in words from its captions: the one written "the sound
    of {a} {name}" (``training.captions``; NSynth instruments have none)."""
    for c in captions:
        if c.startswith(_SOUND_OF):
            rest = c[len(_SOUND_OF):]
            for article in ("a ", "an "):
                if rest.startswith(article):
                    return rest[len(article):]
            return rest
    return None


@dataclass(frozen=True)
class LibraryParams:
    """How a prompt's weights over instruments are made (see the module's docstring)."""

    # Chosen by benchmarks/tune_library.py: each real training instrument left out in
    # turn (docs/training.md, "Sound library").
    tau: float = 0.3
    top_k: int = 8
    real_share: float = 0.95
    contrast: float = 0.0
    #: Choose only among the tables of the ``pool`` instruments most like the words
    #: (0: among every candidate; 1: the most similar instrument's own table). A
    #: candidate near many sounds at once (a bland sustained tone) otherwise wins
    #: prompts as different as "a violin section" and "a bagpipe".
    pool: int = 8
    #: Of those, only instruments whose similarity lies within ``margin`` of the most
    #: similar one's (inf: all of them). Where the words name one instrument ("a
    #: xylophone") and the next are far less alike (0.57 against 1.0), they are another
    #: family's, and their notes must not choose the sound.
    margin: float = float("inf")

    def to_dict(self) -> dict:
        return {"tau": self.tau, "top_k": self.top_k, "real_share": self.real_share,
                "contrast": self.contrast, "pool": self.pool, "margin": self.margin}


#: Timbre values per patch in libraries of older theta schemas (2: ten, 3: fourteen, 4:
#: seventeen).
_OLDER_SIZES = (10, 14, 17)


class SoundLibrary:
    """Candidate patches, their precomputed distances to the training instruments' notes,
    and the instruments' caption embeddings.

    Args:
        keys: ``[n_candidates, n_anchors]`` key anchors, padded with -1.
        values: ``[n_candidates, n_anchors, n_timbre]`` learning-space timbre per anchor
            (``TIMBRE_NAMES`` order; padding rows ignored).
        names: ``[n_candidates]`` what each candidate is (its instrument id).
        titles: ``[n_candidates]`` each candidate's name as a person reads it
            (:func:`instrument_title`); None (a library built before they were stored):
            made from the ids and the captions.
        distance: ``[n_candidates, n_instruments]`` mean log-mel L1 of the candidate's
            renders to the instrument's notes.
        instruments: ``[n_instruments]`` ids; ``real``: ``[n_instruments]`` bool (real
            recordings, not renders); ``family``: ``[n_instruments]``.
        captions: ``[n_captions, dim]`` unit caption embeddings; ``caption_instrument``:
            ``[n_captions]`` the instrument each row describes (rows sorted by it).
        params: :class:`LibraryParams`.
    """

    def __init__(
        self,
        keys: np.ndarray,
        values: np.ndarray,
        names: np.ndarray,
        distance: np.ndarray,
        instruments: np.ndarray,
        real: np.ndarray,
        family: np.ndarray,
        captions: np.ndarray,
        caption_instrument: np.ndarray,
        caption_text: np.ndarray | None = None,
        params: LibraryParams | None = None,
        titles: np.ndarray | None = None,
    ) -> None:
        self.keys = np.asarray(keys, dtype=np.int16)
        self.values = np.asarray(values, dtype=np.float32)
        self.names = np.asarray(names).astype(str)
        self.distance = np.asarray(distance, dtype=np.float32)
        self.instruments = np.asarray(instruments).astype(str)
        self.real = np.asarray(real, dtype=bool)
        self.family = np.asarray(family).astype(str)
        self.captions = np.asarray(captions, dtype=np.float32)
        self.caption_instrument = np.asarray(caption_instrument, dtype=np.int32)
        self.caption_text = None if caption_text is None else np.asarray(caption_text).astype(str)
        self.params = params or LibraryParams()
        n_c, n_i = self.distance.shape
        if self.keys.shape[0] != n_c or self.values.shape[:2] != self.keys.shape:
            raise ValueError("library: keys, values and distance disagree on the candidates")
        if self.values.ndim != 3 or self.values.shape[2] not in _OLDER_SIZES + (len(TIMBRE_NAMES),):
            raise ValueError(f"library: values must hold {len(TIMBRE_NAMES)} timbre values")
        if self.values.shape[2] < len(TIMBRE_NAMES):
            # Written with an older theta schema (a prefix of today's values): the values
            # it lacks take their defaults, which are off, so its patches sound as before.
            pad = TIMBRE_SPACE.to_learning(TIMBRE_SPACE.default)[self.values.shape[2]:]
            self.values = np.concatenate(
                [self.values, np.broadcast_to(pad.astype(np.float32), self.values.shape[:2] + pad.shape)], axis=2
            )
        if not (self.real.shape == self.family.shape == self.instruments.shape == (n_i,)):
            raise ValueError("library: instruments, real and family disagree with distance")
        if np.any(np.diff(self.caption_instrument) < 0):
            raise ValueError("library: caption rows must be sorted by instrument")
        if set(np.unique(self.caption_instrument).tolist()) != set(range(n_i)):
            raise ValueError("library: every instrument needs at least one caption")
        # Where each instrument's caption rows start (for a segment max).
        self._starts = np.searchsorted(self.caption_instrument, np.arange(n_i))
        self._background = self.distance[:, self.real].mean(axis=1) if self.real.any() else 0.0
        # The instrument each candidate is the table of (-1: none).
        where = {k: i for i, k in enumerate(self.instruments)}
        self._cand_inst = np.array([where.get(n, -1) for n in self.names], dtype=np.int64)
        self._tables: dict[int, KeyTable] = {}
        if titles is None:
            titles = self._derived_titles()
        self.titles = np.asarray(titles).astype(str)
        if self.titles.shape != self.names.shape:
            raise ValueError(
                f"library: titles must hold one name per candidate ({self.names.shape[0]}), "
                f"got {self.titles.shape[0] if self.titles.ndim else 0}"
            )

    def _derived_titles(self) -> np.ndarray:
        """Each candidate's readable name where the file stores none: its id, and the
        name its instrument's captions give."""
        own: list[str | None] = [None] * len(self.instruments)
        if self.caption_text is not None:
            for i, (a, b) in enumerate(zip(self._starts, np.append(self._starts[1:], len(self.caption_text)))):
                own[i] = _name_from_captions(self.caption_text[a:b])
        return np.array(
            instrument_titles(self.names, [own[i] if i >= 0 else None for i in self._cand_inst]), dtype=str
        )

    def title(self, index: int) -> str:
        """Candidate ``index``'s name as a person reads it ("Clarinet, FluidR3 GM")."""
        return str(self.titles[int(index)])

    # -- choosing ------------------------------------------------------------------------

    def similarity(self, emb: np.ndarray) -> np.ndarray:
        """Each instrument's similarity to a unit embedding ``[dim]``: its nearest caption's."""
        s = self.captions @ np.asarray(emb, dtype=np.float32)
        return np.maximum.reduceat(s, self._starts)

    def _most_similar(self, similarity: np.ndarray, k: int, margin: float = float("inf")) -> np.ndarray:
        """The ``k`` most similar instruments; among equally similar ones, real recordings
        first. Many instruments share a caption ("a vocal note" is every GM choir preset's
        and the real vocal's); a cut through such a tie by id alone depended on how the ids
        sort ("sf-..." before "vocal_...", so the real vocal was left out, while "brass_..."
        came first), and taking the whole tie lets dozens of presets into the pool."""
        s = np.asarray(similarity, dtype=np.float64)
        order = np.lexsort((~self.real, -s))[: max(1, int(k))]
        return order[s[order] >= s[order[0]] - margin]

    def weights(self, emb: np.ndarray, params: LibraryParams | None = None) -> np.ndarray:
        """The weight of each instrument's notes as the target for ``emb`` (sums to 1)."""
        return self._weights(self.similarity(emb), params or self.params)

    def _weights(self, similarity: np.ndarray, p: LibraryParams) -> np.ndarray:
        s = similarity.astype(np.float64)
        top = self._most_similar(s, p.top_k, p.margin)
        w = np.zeros_like(s)
        s_max = s[top].max()
        groups = []
        for mask in (self.real[top], ~self.real[top]):
            idx = top[mask]
            if idx.size:
                g = np.exp((s[idx] - s[idx].max()) / p.tau)
                groups.append((idx, g / g.sum(), s[idx].max()))
            else:
                groups.append((idx, None, None))
        (ri, rw, rmax), (si, sw, _) = groups
        share = 0.0 if rw is None else p.real_share * float(np.exp((rmax - s_max) / p.tau))
        if sw is None:
            share = 1.0
        if rw is not None:
            w[ri] += share * rw
        if sw is not None:
            w[si] += (1.0 - share) * sw
        return w / w.sum()

    def scores(self, emb: np.ndarray, params: LibraryParams | None = None) -> np.ndarray:
        """Each candidate's score for ``emb`` (lower is better), ``[n_candidates]``."""
        p = params or self.params
        s = self.similarity(emb)
        sc = self.distance @ self._weights(s, p).astype(np.float32) - p.contrast * self._background
        if p.pool > 0:
            near = np.zeros(len(s) + 1, dtype=bool)  # the last slot: candidates of no instrument
            near[self._most_similar(s, p.pool, p.margin)] = True
            sc = np.where(near[self._cand_inst], sc, np.inf).astype(np.float32)
        return sc

    def choose(self, emb: np.ndarray, n: int = 1, params: LibraryParams | None = None) -> np.ndarray:
        """The ``n`` best candidates' indices for a unit embedding ``[dim]``, best first
        (outside the ``pool``, candidates score infinity: they come last, if at all)."""
        sc = self.scores(emb, params)
        n = min(int(n), sc.shape[0])
        best = np.argpartition(sc, n - 1)[:n] if n < sc.shape[0] else np.arange(sc.shape[0])
        return best[np.argsort(sc[best], kind="stable")]

    def table(self, index: int) -> KeyTable:
        """Candidate ``index``'s key table (built once, then shared: tables are immutable)."""
        t = self._tables.get(int(index))
        if t is None:
            keep = self.keys[index] >= 0
            keys = self.keys[index][keep].astype(int).tolist()
            t = KeyTable.from_learning_values(keys, [100], self.values[index][keep][:, None, :])
            self._tables[int(index)] = t
        return t

    def __len__(self) -> int:
        return int(self.distance.shape[0])

    def without(self, instruments) -> SoundLibrary:
        """This library with ``instruments`` (ids) gone: not a target, not a candidate,
        their captions dropped (to judge the choice on an instrument it has never seen)."""
        gone = set(np.atleast_1d(np.asarray(instruments)).astype(str).tolist())
        keep_i = ~np.isin(self.instruments, list(gone))
        keep_c = ~np.isin(self.names, list(gone))
        new_index = np.cumsum(keep_i) - 1
        keep_cap = keep_i[self.caption_instrument]
        return SoundLibrary(
            self.keys[keep_c], self.values[keep_c], self.names[keep_c],
            self.distance[keep_c][:, keep_i], self.instruments[keep_i], self.real[keep_i],
            self.family[keep_i], self.captions[keep_cap],
            new_index[self.caption_instrument[keep_cap]],
            None if self.caption_text is None else self.caption_text[keep_cap],
            self.params,
            self.titles[keep_c],
        )

    # -- files ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a folder: its ``library.npz``; or a file name)."""
        path = Path(path)
        if path.is_dir():
            path = path / LIBRARY_FILE
        arrays = dict(
            keys=self.keys,
            values=self.values,
            names=self.names,
            distance=self.distance.astype(np.float16),
            instruments=self.instruments,
            real=self.real,
            family=self.family,
            captions=self.captions.astype(np.float16),
            caption_instrument=self.caption_instrument,
            params=np.array([self.params.tau, self.params.top_k, self.params.real_share,
                             self.params.contrast, self.params.pool, self.params.margin], dtype=np.float64),
        )
        if self.caption_text is not None:
            arrays["caption_text"] = self.caption_text
        arrays["titles"] = self.titles
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SoundLibrary:
        """Read a library written by :meth:`save` (a folder or the file)."""
        path = Path(path)
        if path.is_dir():
            path = path / LIBRARY_FILE
        with np.load(path, allow_pickle=False) as z:
            # Older libraries: no pool (0), no margin (inf).
            tau, top_k, real_share, contrast, pool, margin = (z["params"].tolist() + [0.0, float("inf")])[:6]
            if len(z["params"]) == 5:
                margin = float("inf")
            return cls(
                z["keys"], z["values"], z["names"], z["distance"].astype(np.float32),
                z["instruments"], z["real"], z["family"], z["captions"].astype(np.float32),
                z["caption_instrument"],
                z["caption_text"] if "caption_text" in z.files else None,
                LibraryParams(float(tau), int(top_k), float(real_share), float(contrast), int(pool), float(margin)),
                z["titles"] if "titles" in z.files else None,
            )
