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
import textwrap

from qa.records import parts

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


#: The best sentences of a result on a terminal: bold on, bold off.
BOLD, PLAIN = "\033[1m", "\033[0m"
# Stand-ins for BOLD and PLAIN while the text is wrapped: private-use characters, which
# ``printable`` leaves alone and documents cannot put there (they were made printable first).
_ON, _OFF = "\ue000", "\ue001"
_FIELDS = ("title", "source", "date", "author", "url")


def format_answer(answer: dict, bold: bool = False) -> str:
    """Render an answer for reading in a terminal; document text cannot drive the terminal.

    With ``bold`` (stdout is a terminal) the highlighted sentences are bold; piped, the text stays plain.
    """
    notes = []
    if answer["excluded_undated"]:
        notes.append(f"({answer['excluded_undated']} undated documents left out by the date filter)")
    if answer["missing_shards"]:
        notes.append(f"(partial answer: shards {', '.join(map(str, answer['missing_shards']))} did not answer)")
    if not answer["results"]:
        return "\n".join(notes + ["No passages found."])
    if answer["unknown_names"]:
        notes.append(f"(no document mentions {', '.join(answer['unknown_names'])}: the documents may not answer this)")
    elif answer["low_confidence"]:
        notes.append("(low confidence: no passage matches the question closely; the documents may not answer it)")
    blocks = []
    for r in answer["results"]:
        if r["weaker"] and (not blocks or not answer["results"][r["rank"] - 2]["weaker"]):
            blocks.append("-- weaker matches --" if blocks else "-- weaker matches only --")
        blocks.append(_format_result(r, bold))
    return "\n\n".join((["\n".join(notes)] if notes else []) + blocks)


def _format_result(r: dict, bold: bool) -> str:
    field = {name: printable(r[name], keep_newlines=False) if r[name] else r[name] for name in _FIELDS}
    cite = " | ".join(x for x in (field["source"], field["date"], field["author"]) if x)
    where = ""
    if r["place"]:
        sentence = f" (sentence on {r['sentence_page']})" if r["page_end"] != r["page"] and r["sentence_page"] else ""
        where = printable(r["place"], keep_newlines=False) + sentence + "  "
    lines = [f"{r['rank']}. [{r['score']:.3f}] {field['title'] or '(untitled)'}", f"   {cite}  {where}chars {r['start']}-{r['end']}"]
    if field["url"]:
        lines.append(f"   {field['url']}")
    text = " ".join(_marked(r["text"], r["highlights"]).split())
    wrapped = textwrap.indent(textwrap.fill(text, 88), "   ")
    lines.append(wrapped.replace(_ON, BOLD if bold else "").replace(_OFF, PLAIN if bold else ""))
    return "\n".join(lines)


def _marked(text: str, highlights: list) -> str:
    """The passage made printable, its highlighted spans between the bold stand-ins."""
    out, pos = [], 0
    for start, end in sorted(highlights):
        start = max(start, pos)
        if start >= end:
            continue
        out += [printable(text[pos:start]), _ON, printable(text[start:end]), _OFF]
        pos = end
    out.append(printable(text[pos:]))
    return "".join(out)


def build_notes(report) -> list[str]:
    """Return the lines a build's report gives besides its summary: each skipped file and each note, with why."""
    lines = [f"skipped {printable(s.source, keep_newlines=False)}: {s.reason}" for s in report.skipped]
    return lines + [f"note {printable(source, keep_newlines=False)}: {note}" for source, note in report.notes]


def describe_document(document: dict) -> str:
    """One line on a document span ``qa show`` prints (``/api/document``'s dict): what it is and which characters."""
    pages = f", {parts(len(document['pages']), document['format'])}" if document["pages"] else ""
    encoding = f", read as {document['encoding']}" if document["encoding"] not in (None, "utf-8") else ""
    return printable(f"{document['source']} ({document['format']}{encoding}{pages}), characters "
                     f"{document['start']}-{document['end']} of {document['length']}", keep_newlines=False)


def format_catalogue(catalogue: dict) -> str:
    """Render ``qa documents``: a line per document, then a line per skipped file with its reason."""
    lines = []
    for d in catalogue["documents"]:
        pages = f", {parts(d['pages'], d['format'])}" if d["pages"] else ""
        encoding = f", {d['encoding']}" if d["encoding"] not in (None, "utf-8") else ""
        lines.append(f"{d['source']}  [{d['format']}{encoding}{pages}, {d['passages']} passages]  "
                     f"{d['date'] or 'no date'}  {d['title'] or '(untitled)'}" + (f" - {d['author']}" if d["author"] else ""))
    lines += [f"skipped {s['source']}: {s['reason']}" for s in catalogue["skipped"]]
    return "\n".join(printable(line, keep_newlines=False) for line in lines)
