"""Every file the code and the docs name exists: a moved benchmark or test leaves no stale pointer behind."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where references are written: the code, the benchmarks, the tests, the docs and the packaging.
SCANNED = ["qa", "bench", "tests", "docs", "deploy", ".ci"]
#: A path into the repository, as code and docs write one: a top-level folder, then a file with an extension.
REFERENCE = re.compile(r"(?<![\w./-])((?:qa|bench|tests|docs|deploy|web|eval|seeds)/[\w./-]*\w\.(?:py|md|toml|conf|jsonl|service))\b")


def referenced() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder in SCANNED:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".toml", ".conf", ".service", "")
                  and p.is_file() and ".cache" not in p.parts and "__pycache__" not in p.parts]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in REFERENCE.finditer(text):
            found.setdefault(match.group(1), []).append(str(path.relative_to(ROOT)))
    return found


def test_every_file_named_in_the_code_and_docs_exists():
    missing = {name: where for name, where in referenced().items()
               if not (ROOT / name).exists() and "<" not in name and "*" not in name}
    assert not missing, missing


def test_the_scan_finds_references():
    assert "bench/quality/modes.py" in referenced() or "bench/tuning/rules.py" in referenced()
