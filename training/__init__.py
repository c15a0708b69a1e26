"""Training for promptsynth: datasets, parameter extraction, training loop, evaluation.

Never imported by the live host. Heavy parts (torch, scipy, fluidsynth) load on use.
"""

from training.captions import PARAPHRASES, TEMPLATES, captions_for, family_prompt
from training.executor import Executor, ExecutorError
from training.notes import Note, load_audio
from training.spectral import SpectralTarget, log_mel, spectral_distance

__all__ = [
    "PARAPHRASES",
    "TEMPLATES",
    "captions_for",
    "family_prompt",
    "Executor",
    "ExecutorError",
    "Note",
    "load_audio",
    "SpectralTarget",
    "log_mel",
    "spectral_distance",
]
