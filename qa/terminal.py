"""Make document text safe to print: no escape sequence in a document reaches the terminal.

Document text and file names are the attacker's: an ESC or C1 control in them
could clear the screen, set the window title or write the clipboard (OSC 52),
and a bidi override could make a line read differently from its bytes. Human
output shows every such character visibly instead; JSON output escapes them
(``\\u001b``), which keeps the JSON exact.
"""

from __future__ import annotations

import json
import re

#: Bidirectional embeddings, overrides, isolates and marks (Unicode TR9), shown as <U+XXXX>.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls but tab and newline, DEL, C1 controls, bidi formatting characters.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
# What JSON leaves raw that a terminal may act on; json.dumps already escapes C0.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029]")
#: C0 control pictures (U+2400 block): ESC prints as ␛, BEL as ␇.
_PICTURES = 0x2400


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(_PICTURES + code)
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def printable(text: str, keep_newlines: bool = True) -> str:
    """Return ``text`` with control, escape and bidi characters replaced by visible stand-ins."""
    text = _UNSAFE.sub(_visible, text)
    if not keep_newlines:
        text = text.replace("\n", "\u2424").replace("\t", "\u2409")
    return text


def dumps(value, indent: int | None = None) -> str:
    """Return ``value`` as JSON that round-trips exactly and prints no raw control characters."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
