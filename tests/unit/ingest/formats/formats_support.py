"""Paths, boilerplate strings and dev evidence shared by the format tests (a unique module name, not conftest)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
FORMATS = FIXTURES / "formats"
SEEDS_HTML = FIXTURES / "seeds-html"
SEEDS_PDF = FIXTURES / "seeds-pdf"
SEEDS = Path(__file__).resolve().parents[4] / "seeds"

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


#: Seed file stem -> evidence strings of the dev questions (shared/eval/dev.jsonl), copied so tests run without shared/.
DEV_EVIDENCE: dict[str, list[str]] = {
    '000_e4f10afeb37f7612': [
        'That is why Europe is now in a panic',
        'limited the number of ballistic missile defense systems each side could have',
    ],
    '001_197f8570244cbea7': [
        'Will Putin Invade',
        'It wants no further NATO encroachment toward its borders',
    ],
    '002_42f21bd48c4da039': [
        'The Kursk region stands apart',
        'there will be no cessation of hostilities',
    ],
    '003_693562d2949a8d6d': [
        'on those who continue to funnel weapons to Kiev',
        'superiority complex',
    ],
    '004_027c9bdda43207c8': [
        'suspended the INF Treaty in February 2019',
        'sit down at the negotiating table',
        'there were U.S. missile strikes on Syria',
        'restricted the number of ballistic missile defense systems each side could have',
    ],
}


def dev_evidence() -> dict[str, list[str]]:
    return DEV_EVIDENCE


def decode(data: bytes) -> str:
    """What a text file's layer has always been: UTF-8 (BOM dropped) or BOM'd UTF-16, line endings kept."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")
