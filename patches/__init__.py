"""Patches: the versioned JSON patch file, the bank, morphing, factory sounds."""

from patches.bank import BANK_FILE, FACTORY_DIR, Bank, default_bank_dir
from patches.format import (
    FORMAT,
    FORMAT_VERSION,
    MAX_NAME_LEN,
    Patch,
    PatchError,
    check_name,
    load_patch,
    morph,
    save_patch,
    save_patch_with_theta,
)

__all__ = [
    "BANK_FILE",
    "FACTORY_DIR",
    "Bank",
    "default_bank_dir",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_NAME_LEN",
    "Patch",
    "PatchError",
    "check_name",
    "load_patch",
    "morph",
    "save_patch",
    "save_patch_with_theta",
]
