"""Patches fitted to recordings while the host plays (OSC /patch/from-audio): each fit
runs `promptsynth patch from-audio` in a process of its own at a lower priority (it
takes seconds of CPU), at most :data:`MAX_AUDIO_FITS` at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

__all__ = ["AudioFits", "MAX_AUDIO_FITS", "AUDIO_FIT_TIMEOUT_S"]

#: Recordings fitted at once; more are refused until one is done.
MAX_AUDIO_FITS = 2
#: Longest a fit may take before it is given up.
AUDIO_FIT_TIMEOUT_S = 60.0


class AudioFits:
    """The fits under way. ``bank``: where each fitted patch is saved; ``apply(channel,
    patch)``: plays it (the host's channel states' ``apply_bank_patch``)."""

    def __init__(self, bank, apply) -> None:
        self.bank = bank
        self.apply = apply
        self._lock = threading.Lock()
        self.running = 0

    def start(self, path: str, name: str, ticket) -> None:
        """Fit a patch to the recording ``path``, save it in the bank as ``name``, then
        play it on ``ticket.channel``; ``ticket.on_done`` gets the patch as saved,
        ``ticket.on_fail`` the reason it failed."""
        with self._lock:
            busy = self.running >= MAX_AUDIO_FITS
            if not busy:
                self.running += 1
        if busy:
            ticket.on_fail(f"{MAX_AUDIO_FITS} recordings are being fitted; try again when one is done")
            return
        threading.Thread(target=self._fit, args=(path, name, ticket), name="promptsynth-fit", daemon=True).start()

    def _fit(self, path: str, name: str, ticket) -> None:
        try:
            cmd = [sys.executable, "-m", "server", "patch", "from-audio", path, "--name", name,
                   "--json", "--bank", str(self.bank.folder)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                os.setpriority(os.PRIO_PROCESS, proc.pid, 5)
            except OSError:
                pass
            try:
                out, err = proc.communicate(timeout=AUDIO_FIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                ticket.on_fail(f"the fit took more than {AUDIO_FIT_TIMEOUT_S:g} s")
                return
            if proc.returncode != 0:
                lines = [ln for ln in err.strip().splitlines() if ln]
                reason = lines[-1] if lines else f"exit status {proc.returncode}"
                ticket.on_fail(reason.replace("promptsynth patch: error: ", ""))
                return
            result = json.loads(out.strip().splitlines()[-1])
            patch = self.bank.load(result["name"])
            self.apply(ticket.channel, patch)
            ticket.on_done(patch)
        except Exception as exc:  # noqa: BLE001 - the fit fails, the host plays on
            ticket.on_fail(f"cannot fit {os.path.basename(path)}: {exc}")
        finally:
            with self._lock:
                self.running -= 1
