"""The dependency direction of docs/internals.md, checked on the source (no import side effects).

Models never import data, decoding or Lightning; data never imports models, decoding or Lightning; the
lower layers never import the Lightning glue. A violation names the file, the line and the import.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avsr_lightning"

GLUE = ("avsr_lightning.datamodules", "avsr_lightning.lightning_module", "avsr_lightning.cli",
        "avsr_lightning.callbacks", "avsr_lightning.lm", "avsr_lightning.sweep", "avsr_lightning.tools")
LIGHTNING = ("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics")

#: package prefix -> imports it must never make
FORBIDDEN = {
    "avsr_lightning.text": ("avsr_lightning.models", "avsr_lightning.data", "avsr_lightning.decoding") + GLUE + LIGHTNING,
    "avsr_lightning.durable": ("avsr_lightning.models", "avsr_lightning.data", "avsr_lightning.decoding",
                               "avsr_lightning.text", "avsr_lightning.batch", "avsr_lightning.weights",
                               "avsr_lightning.evaluation", "avsr_lightning.loss") + GLUE + LIGHTNING,
    "avsr_lightning.batch": ("avsr_lightning.models", "avsr_lightning.data", "avsr_lightning.decoding") + GLUE + LIGHTNING,
    "avsr_lightning.models": ("avsr_lightning.data", "avsr_lightning.decoding", "avsr_lightning.weights") + GLUE + LIGHTNING,
    "avsr_lightning.loss": ("avsr_lightning.data", "avsr_lightning.decoding") + GLUE + LIGHTNING,
    "avsr_lightning.data": ("avsr_lightning.models", "avsr_lightning.decoding", "avsr_lightning.weights",
                            "avsr_lightning.loss") + GLUE + LIGHTNING,
    "avsr_lightning.weights": ("avsr_lightning.data", "avsr_lightning.decoding") + GLUE + LIGHTNING,
    "avsr_lightning.decoding": ("avsr_lightning.data",) + GLUE + LIGHTNING,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_layering_is_respected():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        rules = [banned for owner, banned in FORBIDDEN.items() if _matches(module, owner)]
        for lineno, imported in _imports(path):
            for banned in rules:
                if any(_matches(imported, b) for b in banned):
                    violations.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} imports {imported}")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_checker_catches_a_violation(tmp_path):
    """The checker itself can fail: a models file importing lightning is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import lightning\nfrom avsr_lightning.data import dataset\n")
    names = [name for _, name in _imports(bad)]
    banned = FORBIDDEN["avsr_lightning.models"]
    assert [n for n in names if any(_matches(n, b) for b in banned)] == ["lightning", "avsr_lightning.data"]


@pytest.mark.parametrize("name", ["load_model", "decode", "load_lm"])
def test_public_api_names_resolve(name):
    avsr = importlib.import_module("avsr_lightning")
    assert callable(getattr(avsr, name))


def test_import_is_cheap():
    """``import avsr_lightning`` must not pull in Lightning (public API is lazy)."""
    import subprocess
    import sys

    code = "import sys, avsr_lightning; print('lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
