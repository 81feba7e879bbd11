from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FORMATS = FIXTURES / "formats"
SEEDS_HTML = FIXTURES / "seeds-html"
SEEDS_PDF = FIXTURES / "seeds-pdf"
SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DEV = Path("/work/shared/eval/dev.jsonl")

# Boilerplate strings make_fixtures.py puts in the page chrome (kept in step with its BOILERPLATE).
BOILERPLATE = {
    "cookie": "We use cookies to personalise content and ads",
    "nav": "Opinion & Analysis",
    "share": "Share on Facebook",
    "newsletter": "Sign up for the Morning Briefing newsletter",
    "ad": "Advertisement - scroll to continue",
    "comments": "Great piece, finally someone says it",
    "related": "Most read this week",
    "footer": "All rights reserved. World Desk Media Group",
}


def squash(text: str) -> str:
    return " ".join(text.split())


def seed_meta(stem: str) -> dict:
    """The seed's title/date/url/author, as make_fixtures.py wrote them beside its PDF."""
    return json.loads((SEEDS_PDF / f"{stem}.json").read_text())


def dev_evidence() -> dict[str, list[str]]:
    """Seed file stem -> evidence strings of the dev questions; a few kept here if shared/ is absent."""
    found: dict[str, list[str]] = {}
    if DEV.exists():
        for line in DEV.read_text().splitlines():
            for rel in json.loads(line).get("relevant", []):
                found.setdefault(Path(rel["file"]).stem, []).append(rel["evidence"])
        return found
    return {
        "003_693562d2949a8d6d": ["on those who continue to funnel weapons to Kiev", "superiority complex"],
        "004_027c9bdda43207c8": ["suspended the INF Treaty in February 2019", "there were U.S. missile strikes on Syria"],
    }


@pytest.fixture(scope="session")
def evidence() -> dict[str, list[str]]:
    return dev_evidence()
