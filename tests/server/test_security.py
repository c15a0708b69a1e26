"""Static checks over the code the live host runs: nothing loads a pickle or evaluates
text, and no shell command line is ever built (so none can be built from user input)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.server.conftest import ROOT

#: Packages the host imports at run time (training is never imported by the host).
PACKAGES = ["server", "engine", "model", "patches"]
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {
    ("os", "system"),
    ("os", "popen"),
    ("torch", "load"),
    ("pickle", "load"),
    ("pickle", "loads"),
}


def _sources():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pickle_eval_or_shell(path: Path):
    tree = ast.parse(path.read_text("utf-8"), str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                problems.append(node.module)
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
                problems.append(f"{f.id}()")
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                if (f.value.id, f.attr) in FORBIDDEN_ATTRS:
                    problems.append(f"{f.value.id}.{f.attr}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    problems.append("shell=True")
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    problems.append("allow_pickle")
    assert not problems, f"{path.relative_to(ROOT)}: {problems}"
