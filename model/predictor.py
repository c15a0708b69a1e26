"""Predictor: prompt -> patch (a key table), the one way the project turns words into a
sound: the live host's model worker, `promptsynth render`, `patch new` and `play
--prompt` all call :meth:`Predictor.patch`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine import (
    KEY_ANCHORS,
    PARAM_NAMES,
    PARAMS,
    TIMBRE_NAMES,
    TIMBRE_SPACE,
    VELOCITY_LAYERS,
    KeyTable,
    op3_layout,
    snap_ratio,
)
from model.checkpoint import META_FILE, Checkpoint, key_features, load_checkpoint
from model.encoders import get_encoder
from model.errors import ModelError, check_prompt
from model.library import LIBRARY_FILE, SoundLibrary
from model.lru import LRUCache
from model.text_encoder import TextEncoder

__all__ = [
    "CENTER_KEY",
    "CHOICE_SEED",
    "DEFAULT_CHECKPOINT",
    "MAX_CANDIDATES",
    "MAX_TEMPERATURE",
    "Choice",
    "Predictor",
]

#: Where the trained default checkpoint lives once the training issue ships it.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
MAX_TEMPERATURE = 10.0
MAX_CANDIDATES = 256
#: The note a key-conditioned model's single timbre (a patch's centre) is taken at.
CENTER_KEY = (60, 100)
_TIMBRE_COLS = [PARAM_NAMES.index(n) for n in TIMBRE_NAMES]
_THETA_DEFAULTS = tuple(p.default for p in PARAMS)
#: Values a patch takes once for every key, from its centre, snapped: the ratios to
#: ``RATIO_GRID`` (a ratio between two beats), the third operator's layout to 0, 1 or 2.
_SNAPPED = {"mod_ratio": snap_ratio, "op3_ratio": snap_ratio, "op3_layout": op3_layout}
#: The seed of a library-less model's list of choices (its flow's candidates): the same
#: words give the same list every time.
CHOICE_SEED = 0


@dataclass(frozen=True)
class Choice:
    """One entry of the words' list of choices (:meth:`Predictor.choices`): the patch,
    its name as a person reads it ("Clarinet, FluidR3 GM"; a library-less model's: "flow
    candidate 2") and the library instrument's id ("" for the flow's)."""

    table: KeyTable
    title: str
    instrument: str = ""


class Predictor:
    """Turns prompts into patches (:class:`engine.KeyTable`) through a text encoder and
    the flow.

    ``temperature`` is the std of the latent: 0 gives z = 0 (deterministic, the flow's
    central patch for the prompt); t > 0 draws z ~ N(0, t^2). Every value is clamped into
    the schema's ranges (NaN -> default), so a patch always validates. Patches at
    temperature 0 are cached per prompt (``cache_size`` entries), and the encoder caches
    embeddings, so a repeated prompt costs next to nothing.

    The flow's modulator ratio is continuous, but a patch's is a choice among simple
    ratios: with ``snap`` (the default) every patch's ratio is the nearest of
    ``engine.RATIO_GRID`` (a key table's is its centre's, on every key), since a ratio a
    little off one (1.02) beats against the carrier; so is the third operator's ratio,
    and its layout is its centre's, rounded. On the validation instruments this
    cut the spectral distance of the family patches to the real notes by 11% (REPORT.md).

    A key-conditioned checkpoint (``key_tracked``) gives a timbre per note: a patch is the
    table over every key anchor x velocity layer, one batched pass with one latent for
    all rows so the table is one instrument. A text-only checkpoint's patch is flat.

    A checkpoint with a sound library (``library.npz``, :mod:`model.library`) chooses the
    temperature-0 patch in sound: of the library's patches, the one whose renders come
    closest to the real notes of the instruments the prompt describes. The flow then
    gives the variations (temperature > 0, :meth:`candidates`) and the log-density.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        encoder: TextEncoder,
        *,
        cache_size: int = 1024,
        snap: bool = True,
        library: SoundLibrary | None = None,
    ) -> None:
        if encoder.name != checkpoint.encoder_name or encoder.dim != checkpoint.encoder_dim:
            raise ModelError(
                f"checkpoint was trained with encoder {checkpoint.encoder_name!r} "
                f"({checkpoint.encoder_dim}-d), got {encoder.name!r} ({encoder.dim}-d)"
            )
        self.checkpoint = checkpoint
        self.encoder = encoder
        self._flow = checkpoint.flow.eval()
        self._dtype = next(self._flow.parameters()).dtype
        self._cache: LRUCache[str, KeyTable] = LRUCache(cache_size)
        self._kf = int(checkpoint.key_features)
        self.snap = bool(snap)
        self.library = library
        self._names = checkpoint.theta_normaliser.names
        #: Timbre columns the flow leaves to the library, where some library patch sets
        #: them (the flow's variations keep the chosen instrument's spectra, say).
        self._unmodelled = np.zeros(0, dtype=np.int64)
        if library is not None:
            default = TIMBRE_SPACE.to_learning(TIMBRE_SPACE.default)
            used = np.any(np.abs(library.values - default) > 1e-6, axis=(0, 1))
            self._unmodelled = np.array(
                [i for i, n in enumerate(TIMBRE_NAMES) if n not in self._names and used[i]], dtype=np.int64
            )
        # A key-conditioned checkpoint models timbre values only (the key gives the note);
        # one trained on labels of an older schema, or without the values its labels
        # never set, models some of them: the others take their defaults.
        if self._kf and any(n not in TIMBRE_NAMES for n in self._names):
            raise ModelError(
                f"a key-conditioned checkpoint must model timbre values only ({list(TIMBRE_NAMES)}), "
                f"this one models {list(self._names)}"
            )

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        encoder: TextEncoder | None = None,
        threads: int | None = None,
        warm: bool = True,
        snap: bool = True,
        library: bool = True,
    ) -> Predictor:
        """Load a checkpoint folder (None: the shipped default) and build its encoder.

        ``encoder``: use this one instead of the registry's (e.g. CLAP from a folder);
        it must have the checkpoint's name and size. ``threads``: if given, calls
        ``torch.set_num_threads`` (process-wide). ``warm``: run one prompt through so the
        first real one is fast. ``snap``: snap each patch's modulator ratio to
        ``engine.RATIO_GRID`` (see the class docs); False gives the flow's raw ratio.
        ``library``: use the checkpoint's sound library where it has one (False: the
        flow alone).
        """
        if threads is not None:
            torch.set_num_threads(int(threads))
        if path is None:
            path = DEFAULT_CHECKPOINT
            if not (path / META_FILE).is_file():
                raise ModelError(
                    f"no default checkpoint is shipped yet (expected one in {path}); train one "
                    "with `promptsynth train`, or pass the path of a checkpoint folder"
                )
        ckpt = load_checkpoint(path)
        if encoder is None:
            encoder = get_encoder(ckpt.encoder_name)
        lib = None
        if library and (Path(path) / LIBRARY_FILE).is_file():
            try:
                lib = SoundLibrary.load(Path(path))
            except (OSError, ValueError, KeyError) as exc:
                raise ModelError(f"{Path(path) / LIBRARY_FILE} is not a sound library: {exc}") from exc
            if lib.captions.shape[1] != encoder.dim:
                raise ModelError(
                    f"{Path(path) / LIBRARY_FILE} holds {lib.captions.shape[1]}-d caption "
                    f"embeddings; the encoder gives {encoder.dim}-d"
                )
        predictor = cls(ckpt, encoder, snap=snap, library=lib)
        if warm:
            emb = encoder._encode(["warm up"])
            predictor._patches(emb, np.zeros((1, ckpt.flow.dim)))
            if lib is not None:
                predictor._chosen(emb)
        return predictor

    @property
    def key_tracked(self) -> bool:
        """Whether the checkpoint's patches change with the key and velocity."""
        return self._kf > 0

    @property
    def meta(self) -> dict:
        """The checkpoint's meta.json (encoder, hyper-parameters, data, metrics)."""
        return self.checkpoint.meta

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings of ``prompts``, shape ``[n, encoder.dim]``, float32."""
        return self.encoder.encode(list(prompts))

    # -- prompt -> patch -------------------------------------------------------------------

    def patch(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> KeyTable:
        """The patch for ``prompt``: z = 0 at temperature 0, else z ~ N(0, temperature^2)
        drawn with ``seed``. The one way from words to a sound."""
        temperature = _check_temperature(temperature)
        _check_seed(seed)
        key = check_prompt(prompt)
        if temperature == 0.0:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        emb = self.encoder.encode([key])
        if temperature == 0.0 and self.library is not None:
            table = self._chosen(emb)[0]
        else:
            table = self._patches(emb, _latent((1, self._flow.dim), temperature, seed))[0]
        if temperature == 0.0:
            self._cache.put(key, table)
        return table

    def patches(self, prompts: Sequence[str]) -> list[KeyTable]:
        """The temperature-0 patch of each prompt, computed as one batch."""
        if isinstance(prompts, str):
            raise ModelError("patches takes a list of prompts, got one str")
        cleaned = [check_prompt(p) for p in prompts]
        if not cleaned:
            return []
        emb = self.encoder.encode(cleaned)
        if self.library is not None:
            tables = self._chosen(emb)
        else:
            tables = self._patches(emb, np.zeros((len(cleaned), self._flow.dim)))
        for key, table in zip(cleaned, tables):
            self._cache.put(key, table)
        return tables

    def morph(self, prompt_a: str, prompt_b: str, t: float) -> KeyTable:
        """The patch a fraction ``t`` (0..1) of the way from ``prompt_a``'s to
        ``prompt_b``'s. With a sound library: :meth:`engine.KeyTable.morph` of the two
        chosen patches (the library holds whole instruments; what lies between two is a
        blend of their sounds, not a third instrument). Without: the flow's z = 0 patch
        for the embedding along the great circle between the two unit embeddings
        (spherical interpolation)."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= float(t) <= 1.0:
            raise ModelError(f"t must be a number in range 0..1, got {t!r}")
        if self.library is not None:
            return KeyTable.morph(self.patch(prompt_a), self.patch(prompt_b), float(t))
        emb = self.encoder.encode([check_prompt(prompt_a), check_prompt(prompt_b)]).astype(np.float64)
        mixed = _slerp(emb[0], emb[1], float(t))
        return self._patches(mixed[None], np.zeros((1, self._flow.dim)))[0]

    def candidates(
        self, prompt: str, n: int = 8, temperature: float = 1.0, seed: int | None = None
    ) -> list[KeyTable]:
        """``n`` patches for ``prompt``: first the z = 0 patch, then n - 1 drawn with
        z ~ N(0, temperature^2), ordered by the flow's log-density of each one's centre,
        highest first."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CANDIDATES:
            raise ModelError(f"n must be an int in range 1..{MAX_CANDIDATES}, got {n!r}")
        temperature = _check_temperature(temperature)
        _check_seed(seed)
        first = self.patch(prompt)
        if n == 1:
            return [first]
        emb = self.encoder.encode([check_prompt(prompt)])
        drawn = self._patches(np.repeat(emb, n - 1, axis=0), _latent((n - 1, self._flow.dim), temperature, seed))
        scores = self._log_prob(emb, np.stack([_centre_values(p) for p in drawn]))
        return [first] + [drawn[i] for i in np.argsort(-scores, kind="stable")]

    def choices(self, prompt: str, n: int = 8) -> list[Choice]:
        """The words' patch and the next-best ones, best first, at most ``n`` (1..256),
        the same list every time (a player's "next one, please").

        With a sound library: its candidates ranked by their score for the words
        (:meth:`SoundLibrary.scores`), among the ``pool`` instruments most like the words
        only (a candidate outside it never comes, so the list may be shorter than ``n``);
        the first is :meth:`patch`'s. Without: :meth:`candidates` at temperature 1 drawn
        with :data:`CHOICE_SEED`."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CANDIDATES:
            raise ModelError(f"n must be an int in range 1..{MAX_CANDIDATES}, got {n!r}")
        key = check_prompt(prompt)
        lib = self.library
        if lib is None:
            tables = self.candidates(key, n, temperature=1.0, seed=CHOICE_SEED)
            return [Choice(t, f"flow candidate {i + 1}") for i, t in enumerate(tables)]
        emb = self.encoder.encode([key])[0]
        # patch()'s own choice first, whatever order equal scores would take below; the
        # rest from the whole pool, the library's similarity margin aside (words that
        # name one instrument keep the first to it, and still have a next).
        first = int(lib.choose(emb, 1)[0])
        scores = lib.scores(emb, replace(lib.params, margin=float("inf")))
        order = np.lexsort((np.arange(scores.shape[0]), scores))
        ranked = [first] + [int(i) for i in order if i != first and np.isfinite(scores[i])]
        return [Choice(lib.table(i), lib.title(i), str(lib.names[i])) for i in ranked[:n]]

    def log_prob(self, prompt: str, patch: KeyTable) -> float:
        """log p(patch's centre | prompt) in nats, in the flow's normalised space."""
        if not isinstance(patch, KeyTable):
            raise ModelError(f"patch must be a KeyTable, got {type(patch).__name__}")
        emb = self.encoder.encode([check_prompt(prompt)])
        return float(self._log_prob(emb, _centre_values(patch)[None])[0])

    def _chosen(self, emb: np.ndarray) -> list[KeyTable]:
        """The library's patch for each unit embedding row of ``emb [n, dim]``."""
        return [self.library.table(int(self.library.choose(e, 1)[0])) for e in emb]

    # -- the flow ------------------------------------------------------------------------

    def _patches(self, emb: np.ndarray, z: np.ndarray) -> list[KeyTable]:
        """One patch per row of ``emb [n, dim]`` and ``z [n, flow dim]``; with a sound
        library, the values the flow does not model (the spectra) are those of the
        library's patch for the words, key by key."""
        if self._kf:
            tables = [self._table(e, zi) for e, zi in zip(emb, z)]
        else:
            tables = [KeyTable.flat(row) for row in self._timbres(emb, z)]
        if self.library is None or not self._unmodelled.size:
            return tables
        return [self._completed(t, c) for t, c in zip(tables, self._chosen(emb))]

    def _completed(self, table: KeyTable, source: KeyTable) -> KeyTable:
        """``table`` with every value the flow does not model taken from ``source`` at
        each of its anchors (a flat table: at every anchor of ``source``)."""
        if table.is_flat:
            keys, vels = source.keys, source.velocities
        else:
            keys, vels = table.keys, table.velocities
        values = np.array([[table.lookup(k, v) for v in vels] for k in keys])
        values[..., self._unmodelled] = [[source.lookup(k, v)[self._unmodelled] for v in vels] for k in keys]
        return KeyTable(keys, vels, values)

    def _timbres(self, emb: np.ndarray, z: np.ndarray) -> np.ndarray:
        """A text-only checkpoint's timbre values ``[n, n_timbre]``, clamped, snapped."""
        # Every theta value (a checkpoint's theta may lack some: defaults), clamped.
        full = self.checkpoint.theta_normaliser.full(self._decode(emb, z))
        timbre = full[:, _TIMBRE_COLS]
        if self.snap:
            for name, snap in _SNAPPED.items():
                j = TIMBRE_NAMES.index(name)
                timbre[:, j] = snap(timbre[:, j])
        return timbre

    def _table(self, emb: np.ndarray, z: np.ndarray) -> KeyTable:
        """A key-conditioned checkpoint's table for one embedding ``[dim]`` and latent."""
        # Every anchor, then the centre key (whose ratio the whole table takes).
        keys = np.append(np.repeat(np.array(KEY_ANCHORS), len(VELOCITY_LAYERS)), CENTER_KEY[0])
        vels = np.append(np.tile(np.array(VELOCITY_LAYERS), len(KEY_ANCHORS)), CENTER_KEY[1])
        n = keys.shape[0]
        values = self._decode(np.repeat(emb[None], n, axis=0), np.repeat(z[None], n, axis=0), keys, vels)
        if self.snap:
            for name, snap in _SNAPPED.items():
                if name in self._names:
                    j = self._names.index(name)
                    values[:, j] = snap(values[-1, j])
        return KeyTable(
            KEY_ANCHORS,
            VELOCITY_LAYERS,
            values[:-1].reshape(len(KEY_ANCHORS), len(VELOCITY_LAYERS), -1),
            names=self._names,
            clamp=True,
        )

    def _context(self, emb: np.ndarray, pitch=None, velocity=None) -> torch.Tensor:
        c = self.checkpoint.embedding_normaliser.transform(emb)
        if self._kf:
            if pitch is None:
                pitch, velocity = CENTER_KEY
            feats = key_features(pitch, velocity)
            c = np.concatenate([c, np.broadcast_to(feats, (c.shape[0], feats.shape[-1]))], axis=-1)
        return torch.as_tensor(c, dtype=self._dtype)

    def _decode(self, emb: np.ndarray, z: np.ndarray, pitch=None, velocity=None) -> np.ndarray:
        """Physical values of the checkpoint's parameters, ``[n, len(names)]``."""
        with torch.inference_mode():
            x = self._flow.inverse(
                torch.as_tensor(z, dtype=self._dtype), self._context(emb, pitch, velocity)
            )
        return self.checkpoint.theta_normaliser.decode(x.double().numpy())

    def _log_prob(self, emb: np.ndarray, timbre: np.ndarray) -> np.ndarray:
        """Log-densities of timbre values ``[n, n_timbre]`` (at the centre key)."""
        norm = self.checkpoint.theta_normaliser
        full = np.tile(np.array([p for p in _THETA_DEFAULTS]), (timbre.shape[0], 1))
        full[:, _TIMBRE_COLS] = timbre
        if self._kf:
            full[:, 0], full[:, 1] = CENTER_KEY
        x = norm.encode(norm.pick(full))
        with torch.inference_mode():
            lp = self._flow.log_prob(torch.as_tensor(x, dtype=self._dtype), self._context(emb))
        return np.nan_to_num(lp.double().numpy(), nan=-np.inf)

    def __repr__(self) -> str:
        return f"Predictor(encoder={self.encoder.name!r}, flow={self._flow.config})"


def _centre_values(patch: KeyTable) -> np.ndarray:
    return patch.lookup(*CENTER_KEY).copy()


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ModelError(
            f"temperature must be a number in range 0..{MAX_TEMPERATURE:g}, got {temperature!r}"
        )
    t = float(temperature)
    if not (math.isfinite(t) and 0.0 <= t <= MAX_TEMPERATURE):
        raise ModelError(f"temperature must be in range 0..{MAX_TEMPERATURE:g}, got {t:g}")
    return t


def _check_seed(seed: object) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ModelError(f"seed must be None or an int >= 0, got {seed!r}")


def _latent(shape: tuple[int, int], temperature: float, seed: int | None) -> np.ndarray:
    _check_seed(seed)
    if temperature == 0.0:
        return np.zeros(shape)
    return np.random.default_rng(seed).standard_normal(shape) * temperature


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    cos = float(np.clip(np.dot(a, b), -1.0, 1.0))
    angle = math.acos(cos)
    if angle < 1e-6 or math.pi - angle < 1e-6:  # (anti)parallel: the path is not unique
        out = (1.0 - t) * a + t * b
    else:
        out = (math.sin((1.0 - t) * angle) * a + math.sin(t * angle) * b) / math.sin(angle)
    norm = np.linalg.norm(out)
    return out / norm if norm > 1e-12 else a
