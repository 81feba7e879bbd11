"""Two more query sets over the Wikipedia collection of bench/datasets/wiki_beir.py, in styles unlike its descriptions.

- ``wiki-entity``: keyword queries about named entities, as entity search gets
  them: the content words of an article's short description plus one name its
  text mentions that is not its own title ("american actor titanic").
  Lexical matching finds every article that shares the name; the right one
  is the one the type words fit.
- ``wiki-question``: natural-language questions made from an article's first
  sentence with its subject taken out ("Who was a German-born theoretical
  physicist ...?"), cut to at most 24 words.

Both use the corpus of ``wiki-beir`` unchanged (so its index serves all three
sets) and articles that are not among its queries. Each set has a tuning half
(``<name>-tune``) and a held-out half (``<name>``), drawn disjointly: tune on
the first, report the second. ``wiki-beir-tune`` is a tuning half for
``wiki-beir`` itself: descriptions of other articles.

    python -m bench.datasets.wiki_beir && python -m bench.datasets.wiki_sets
    qa eval bench/.cache/wiki-entity --beir-index index/beir/wiki-beir
"""

from __future__ import annotations

import json
import random
from collections import Counter
import re
import shutil
from pathlib import Path

import click

from bench.datasets.wiki_beir import fetch_archive, load_articles, usable_query, write_jsonl
from bench.common import CACHE

# A name: capitalised words in a row, at least one of them four letters or more.
_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*\s){0,3}[A-Z][\w'’-]*")
_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset("a an the of in on at by for and or to from with as is was are were be".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
MAX_QUESTION_WORDS = 24


def entity_query(article: dict, rng: random.Random) -> str | None:
    """Return '<description content words> <a name the text mentions>', or None when the article has none."""
    description = (article.get("description") or "").strip()
    words = [w.lower() for w in _WORD.findall(description) if w.lower() not in _STOP]
    if not 1 <= len(words) <= 5:
        return None
    title_words = {w.lower() for w in _WORD.findall(article["title"])}
    names = []
    text = article["extract"]
    for match in _NAME.finditer(text):
        name = match.group().strip(" .")
        if text[max(0, match.start() - 2):match.start()].strip() in {"", "."}:
            continue  # capitalised because a sentence starts there, not because it is a name
        tokens = {w.lower() for w in _WORD.findall(name)}
        if tokens and not tokens & title_words and not tokens & set(words) and max(map(len, tokens)) >= 4 \
                and name.split()[0] not in {"The", "He", "She", "It", "They", "In", "His", "Her", "This", "A", "An"}:
            names.append(name)
    if not names:
        return None
    return " ".join(words + [rng.choice(sorted(set(names)))])


def question_query(article: dict) -> str | None:
    """Return the first sentence as a question with the article's subject taken out, or None."""
    first = _SENTENCE_END.split(article["extract"].strip(), maxsplit=1)[0].strip()
    match = re.match(r"^(.{2,120}?)\s+(is|was|are|were)\s+(.+?)[.]?$", first, flags=re.S)
    if match is None:
        return None
    subject, verb, rest = match.groups()
    title_words = {w.lower() for w in _WORD.findall(article["title"])}
    if not title_words & {w.lower() for w in _WORD.findall(subject)}:
        return None  # the sentence is not about the article's subject by name
    rest_words = rest.split()
    if len(rest_words) < 4 or title_words & {w.lower() for w in _WORD.findall(rest)}:
        return None  # too short to ask about, or the answer is in the question
    asked = "Who" if re.match(r"(an? )?(\w+ )?(American|British|English|German|French|[A-Z]\w+ )?"
                              r"(actor|actress|singer|politician|writer|author|player|footballer|musician|"
                              r"artist|painter|poet|scientist|engineer|businessman|director|composer)",
                              rest) else "What"
    return f"{asked} {verb} {' '.join(rest_words[:MAX_QUESTION_WORDS])}?"


def write_set(out: Path, corpus: Path, chosen: list[tuple[dict, str]]) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus, out / "corpus.jsonl")
    write_jsonl(out / "queries.jsonl", [{"_id": "q" + a["id"][1:], "text": q} for a, q in chosen])
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"q{a['id'][1:]}\t{a['id']}\t1\n" for a, _ in chosen)


@click.command()
@click.option("--queries", "n_queries", default=300, show_default=True, help="Queries in each half.")
@click.option("--wiki", type=click.Path(path_type=Path), default=CACHE / "wiki-beir", show_default=True,
              help="The wiki-beir folder whose corpus the sets share.")
@click.option("--cache", type=click.Path(path_type=Path), default=CACHE / "wiki", show_default=True)
@click.option("--seed", default=1, show_default=True)
def main(n_queries: int, wiki: Path, cache: Path, seed: int) -> None:
    """Write wiki-entity(-tune) and wiki-question(-tune) next to the wiki-beir folder."""
    articles = load_articles(fetch_archive(cache), "en-us")
    in_corpus = {json.loads(line)["_id"] for line in (wiki / "corpus.jsonl").open(encoding="utf-8")}
    taken = {"w" + json.loads(line)["_id"][1:] for line in (wiki / "queries.jsonl").open(encoding="utf-8")}
    pool = [a for a in articles if a["id"] in in_corpus and a["id"] not in taken]
    rng = random.Random(seed)
    # Descriptions as wiki-beir asks them, for tuning only: wiki-beir itself is the held-out half.
    counts = Counter((a.get("description") or "").strip().lower() for a in articles)
    descriptions = [(a, a["description"].strip()) for a in pool if usable_query(a, counts)]
    tune = sorted(random.Random(seed + 1).sample(descriptions, min(n_queries, len(descriptions))), key=lambda c: c[0]["id"])
    write_set(wiki.parent / "wiki-beir-tune", wiki / "corpus.jsonl", tune)
    click.echo(f"wiki-beir-tune: {len(tune)} tuning queries")
    for name, make in (("wiki-entity", lambda a: entity_query(a, rng)), ("wiki-question", question_query)):
        made = [(a, q) for a in pool if (q := make(a))]
        chosen = rng.sample(made, min(2 * n_queries, len(made)))
        tune, test = chosen[: len(chosen) // 2], chosen[len(chosen) // 2:]
        write_set(wiki.parent / f"{name}-tune", wiki / "corpus.jsonl", sorted(tune, key=lambda c: c[0]["id"]))
        write_set(wiki.parent / name, wiki / "corpus.jsonl", sorted(test, key=lambda c: c[0]["id"]))
        click.echo(f"{name}: {len(tune)} tuning and {len(test)} held-out queries of {len(made)} possible, e.g.")
        for _, query in test[:5]:
            click.echo(f"  {query}")


if __name__ == "__main__":
    main()
