"""Voice allocation: which voice slot a note plays in, and which voice is stolen."""

from __future__ import annotations

import numpy as np

from engine.voices import VoiceBank, find_note, note_key, steal_victim

__all__ = ["Allocator"]


class Allocator:
    """Finds a note's voice and claims slots in a :class:`VoiceBank`.

    Args:
        voices: the bank (twice ``max_voices`` slots: a stolen voice fades out in a slot
            of its own).
        max_voices: sounding notes at once; beyond it a voice is stolen.
    """

    def __init__(self, voices: VoiceBank, max_voices: int) -> None:
        self.voices = voices
        self.max_voices = max_voices
        self._age = 0.0

    def find(self, ch: int, pitch: int) -> int:
        """The voice of ``pitch`` on ``ch`` that is not fading out, or -1."""
        vb = self.voices
        return find_note(vb.state, vb.n, note_key(ch, pitch))

    def find_key(self, key: float) -> int:
        """The voice whose ``note_key`` is ``key`` (``fnote_key``) and is not fading, or -1."""
        return find_note(self.voices.state, self.voices.n, key)

    def allocate(self) -> int:
        """A free slot; else steal the quietest released voice; else the oldest."""
        vb = self.voices
        # One compiled pass over the voices: a burst of note-ons steals once per note.
        victim = steal_victim(vb.state, vb.n, self.max_voices)
        if victim >= 0:
            vb.fade(victim)
        if vb.n >= vb.capacity:
            # Every spare slot is fading: cut the quietest fade short.
            n = vb.n
            vb.remove(int(np.where(vb.fading[:n] > 0, vb.level[:n], np.inf).argmin()))
        return vb.add()

    def touch(self, i: int) -> None:
        """Voice ``i`` was (re)started now: it is the newest (the last to be stolen)."""
        self._age += 1.0
        self.voices.age[i] = self._age

    def channel(self, ch: int) -> np.ndarray:
        """Indices of ``ch``'s voices that are not fading out."""
        vb = self.voices
        n = vb.n
        return np.flatnonzero((vb.chan[:n] == ch) & (vb.fading[:n] == 0))
