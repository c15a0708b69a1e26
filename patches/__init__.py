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
    morph_table,
    save_patch,
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
    "morph_table",
    "save_patch",
]
