from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = ci[-1]
    assert "pytest" in command
    assert command in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
