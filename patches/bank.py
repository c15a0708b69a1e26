"""A bank: a folder of patch files plus a map of MIDI program numbers to patch names."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

from patches.format import Patch, PatchError, check_name, load_patch, save_patch, write_atomically

__all__ = ["Bank", "default_bank_dir", "file_stem", "BANK_FILE", "FACTORY_DIR"]

BANK_FILE = "bank.json"
#: The factory bank shipped with promptsynth (read-only).
FACTORY_DIR = Path(__file__).resolve().parent / "factory"


def file_stem(name: str) -> str:
    """A patch's file name (without ``.json``): its name with spaces as ``-``, so that no
    file name of a bank needs quoting in a shell ("grand piano" -> ``grand-piano.json``)."""
    return "-".join(check_name(name).split(" "))


def default_bank_dir() -> Path:
    """``$XDG_DATA_HOME/promptsynth/patches`` (``~/.local/share/promptsynth/patches``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "promptsynth" / "patches"


class Bank:
    """Patches stored as ``<folder>/<file_stem(name)>.json`` (the patch's name, spaces as
    ``-``; the name itself, spaces included, is kept in the file). A patch is found by its
    name or its file's name; files of older versions named with spaces still load.

    Program numbers 0-127 come from ``bank.json`` (``{"programs": {"0": "name"}}``);
    a program with no entry selects the patch at that position in name order.
    A corrupt or foreign file is skipped and reported in ``errors``; the rest loads.

    With ``factory`` the shipped factory bank (``FACTORY_DIR``) lies underneath, read-only:
    its patches can be loaded and listed unless the folder has one of the same name, and its
    program map (General MIDI numbers) answers the programs the folder leaves open.
    Saves always go to the folder.

    Args:
        folder: the bank's folder, created if missing.
        factory: layer the factory bank underneath.
    """

    def __init__(self, folder: str | os.PathLike | None = None, create: bool = True, factory: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else default_bank_dir()
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not self.folder.is_dir():
            raise PatchError(f"bank folder {self.folder} does not exist")
        use_factory = factory and FACTORY_DIR.is_dir() and FACTORY_DIR.resolve() != self.folder.resolve()
        self.factory: Bank | None = Bank(FACTORY_DIR, create=False) if use_factory else None
        self._lock = threading.RLock()
        self._patches: dict[str, Patch] = {}  # by name
        self._stems: dict[str, str] = {}  # file stem -> name
        self._programs: dict[int, str] = {}
        self.errors: list[str] = []
        self.reload()

    def reload(self) -> None:
        """Read the folder again."""
        with self._lock:
            patches: dict[str, Patch] = {}
            stems: dict[str, str] = {}
            errors: list[str] = []
            for path in sorted(self.folder.glob("*.json")):
                if path.name == BANK_FILE or path.name.startswith("."):
                    continue
                try:
                    check_name(path.stem)
                    patch = load_patch(path)
                except PatchError as exc:
                    errors.append(str(exc))
                    continue
                if patch.name in patches:
                    errors.append(f"{path}: a second patch named {patch.name!r}; ignored")
                    continue
                patches[patch.name] = patch
                stems[path.stem] = patch.name
                stems.setdefault(file_stem(patch.name), patch.name)
            self._patches = patches
            self._stems = stems
            self._programs = self._read_programs(errors)
            self.errors = errors

    def _read_programs(self, errors: list[str]) -> dict[int, str]:
        path = self.folder / BANK_FILE
        if not path.exists():
            return {}
        try:
            d = json.loads(path.read_text("utf-8"))
            progs = d["programs"]
            if not isinstance(progs, dict):
                raise TypeError("programs must be an object")
            result = {}
            for k, v in progs.items():
                n = int(k)
                if not 0 <= n <= 127 or not isinstance(v, str):
                    raise ValueError(f"program {k!r}: {v!r}")
                result[n] = v
            return result
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{path}: program map ignored: {exc}")
            return {}

    # -- reading -------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The folder's patch names, then the factory's it does not shadow."""
        with self._lock:
            own = sorted(self._patches)
        extra = [n for n in self.factory.names() if n not in own] if self.factory else []
        return own + extra

    def own_names(self) -> list[str]:
        with self._lock:
            return sorted(self._patches)

    def __contains__(self, name: str) -> bool:
        return self._own_name(name) is not None or (self.factory is not None and name in self.factory)

    def _own_name(self, name: str) -> str | None:
        """The name of the folder's patch called, or stored as, ``name`` (None: none)."""
        if name in self._patches:
            return name
        return self._stems.get(name) or self._stems.get(name.replace(" ", "-"))

    def __len__(self) -> int:
        return len(self.names())

    def load(self, name: str) -> Patch:
        """The patch ``name``: the folder's (a file added since the bank was read is
        picked up), else the factory's."""
        n = check_name(name)
        with self._lock:
            own = self._own_name(n)
            patch = self._patches.get(own) if own is not None else None
            if patch is None:
                for path in (self.folder / f"{file_stem(n)}.json", self.folder / f"{n}.json"):
                    if path.is_file():
                        patch = load_patch(path)  # PatchError says what is wrong with the file
                        self._patches[patch.name] = patch
                        self._stems[path.stem] = patch.name
                        self._stems.setdefault(file_stem(patch.name), patch.name)
                        break
        if patch is None and self.factory is not None and n in self.factory:
            patch = self.factory.load(n)
        if patch is None:
            raise PatchError(f"no patch named {n!r} in bank {self.folder}")
        return patch

    def program(self, number: int) -> Patch | None:
        """The patch that program ``number`` (0-127) selects, or None."""
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
            raise PatchError(f"program must be an int in range 0..127, got {number!r}")
        name = self._program_map().get(number)
        return self.load(name) if name is not None else None

    def programs(self) -> dict[int, str]:
        """Program number -> patch name: the folder's map, then the folder's patches by
        position in name order, then the factory's map for programs still open."""
        return dict(sorted(self._program_map().items()))

    def _program_map(self) -> dict[int, str]:
        with self._lock:
            own = {k: v for k, v in self._programs.items() if v in self._patches or self._in_factory(v)}
            names = sorted(self._patches)
        result = dict(self.factory._program_map_explicit()) if self.factory is not None else {}
        result.update(enumerate(names[:128]))
        result.update(own)
        return result

    def _in_factory(self, name: str) -> bool:
        return self.factory is not None and name in self.factory

    def _program_map_explicit(self) -> dict[int, str]:
        with self._lock:
            return {k: v for k, v in self._programs.items() if v in self._patches}

    # -- writing -------------------------------------------------------------------------

    def save(self, patch: Patch, name: str | None = None, overwrite: bool = False) -> str:
        """Save ``patch`` as ``name`` (default: its own). Without ``overwrite`` an existing
        name is kept and the patch is saved as ``name-2``, ``name-3`` ...; returns the name used."""
        base = check_name(name if name is not None else patch.name)
        with self._lock:
            candidate = base
            i = 2
            while True:
                path = self.folder / f"{file_stem(candidate)}.json"
                old = self.folder / f"{candidate}.json"  # a file of an older version
                taken = path.exists() or old.exists() or self._own_name(candidate) is not None
                if overwrite or not taken:
                    break
                suffix = f"-{i}"
                candidate = check_name(base[: 64 - len(suffix)] + suffix)
                i += 1
            stored = replace(patch, name=candidate)
            save_patch(stored, path, overwrite=overwrite)
            if overwrite and old != path and old.exists():
                old.unlink()  # the older file of this name is replaced, not shadowed
            self._patches[candidate] = stored
            self._stems[path.stem] = candidate
            return candidate

    def set_program(self, number: int, name: str) -> None:
        """Map program ``number`` to patch ``name`` (the folder's, or the factory's) and
        save the map atomically."""
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
            raise PatchError(f"program must be an int in range 0..127, got {number!r}")
        n = check_name(name)
        with self._lock:
            own = self._own_name(n)
            if own is None and self._in_factory(n):
                own = self.factory.load(n).name  # a factory patch: by its display name
            if own is None:
                raise PatchError(f"no patch named {n!r} in bank {self.folder}")
            self._programs[number] = own
            data = json.dumps({"format": "promptsynth-bank", "programs": {str(k): v for k, v in sorted(self._programs.items())}}, indent=2)
            write_atomically(self.folder / BANK_FILE, (data + "\n").encode("utf-8"))
