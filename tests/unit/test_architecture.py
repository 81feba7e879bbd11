"""The layering the README draws is a contract: import-linter checks it on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_layers_import_only_downwards():
    importlinter = pytest.importorskip("importlinter.cli")
    assert importlinter.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_help_loads_neither_numpy_nor_faiss():
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from qa.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('numpy', 'faiss', 'torch', 'flask') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_stage_has_a_contract_that_only_its_face_is_imported_from_outside():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    protected = {c["allowed_importers"][0] for c in contracts if c["type"] == "protected"}
    for contract in contracts:
        if contract["type"] == "protected":
            (stage,) = contract["allowed_importers"]
            assert contract["protected_modules"] == [f"{stage}.**"]  # everything below the face, nothing else
    stages = {f"qa.{p.name}" for p in (ROOT / "qa").iterdir() if (p / "__init__.py").is_file()}
    assert stages == protected, stages ^ protected
