"""How fast qa is on this machine: passages embedded a second, and the time a question takes.

    python -m bench.speed.machine [--docs DIR] [--encoders int8 fp32] [--questions 50] [--model M]
                                  [--sentence-vectors auto|late|separate]

Builds ``--docs`` (default: the seeds, copied until there are at least ``--least``
passages, each copy under its own name) into a fresh index in a temporary folder
with each passage encoder, as ``qa index`` would, then asks ``--questions``
questions (the first sentence of passages picked across the collection) in the
default mode, as ``qa search`` would, after a few to warm up. Prints the CPU (as
int8 kernels tell CPUs apart), passages a second for each encoder, and the p50
and p95 time of a question. Figures from a busy machine are not comparable:
the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import SEEDS, cpu_class, loadavg, log, table
from qa.indexing import build, passage_encoder
from qa.search import Searcher
from qa.settings import SENTENCE_VECTORS, ChunkSettings
from qa.testing import percentile

WARM_UP = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=SEEDS, help="documents to build (default: the seeds)")
    parser.add_argument("--least", type=int, default=2000, help="copy the documents until this many passages")
    parser.add_argument("--encoders", nargs="+", default=["int8", "fp32"], choices=["int8", "fp32"])
    parser.add_argument("--model", default=None, help="as qa's --model (default all-MiniLM-L6-v2)")
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--sentence-vectors", default="auto", choices=SENTENCE_VECTORS,
                        help="as qa index's (auto: separate for all-mpnet-base-v2, else late)")
    args = parser.parse_args()
    chunking = ChunkSettings(sentence_vectors=args.sentence_vectors)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-machine-") as work:
        docs = copies(args.docs, Path(work) / "docs", args.least)
        for encoder in args.encoders:
            index_dir = Path(work) / f"index-{encoder}"
            log(f"building {docs} with {encoder}")
            report = build(docs, index_dir, passage_encoder(index_dir, args.model, encoder), chunking, progress=True)
            rate = report.encoded / report.embed_seconds if report.embed_seconds else 0.0
            took = question_times(index_dir, args.model, args.questions)
            rows.append([encoder, report.passages, f"{rate:,.0f}", f"{report.seconds:.0f}",
                         f"{statistics.median(took):.1f}", f"{percentile(took, 95):.1f}"])
    print(table(f"qa on {cpu_class()} (load {loadavg()}), sentence vectors {args.sentence_vectors}",
                ["passages by", "passages", "passages/s", "build s", "question p50 ms", "p95 ms"], rows))


def copies(source: Path, target: Path, least: int) -> Path:
    """Copy ``source`` into ``target`` as often as it takes to reach about ``least`` passages (120 words each)."""
    files = [p for p in sorted(source.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    words = sum(len(p.read_bytes().split()) for p in files) or 1
    times = max(1, -(-least * 100 // words))  # passages overlap: about 100 new words each
    for n in range(times):
        for path in files:
            destination = target / f"copy{n:03d}" / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, destination)
    return target


def question_times(index_dir: Path, model: str | None, count: int) -> list[float]:
    """Milliseconds each of ``count`` questions takes, encoding included, after a few to warm up."""
    searcher = Searcher(index_dir, model=model)
    reader = searcher.reader
    rows = random.Random(0).sample(range(reader.manifest.passage_count), min(count + WARM_UP,
                                                                           reader.manifest.passage_count))
    questions = [p.text.split(". ")[0][:300] for p in reader.tables.passages(rows)]
    took = []
    for question in questions:
        began = time.perf_counter()
        searcher.search(question, 5)
        took.append((time.perf_counter() - began) * 1000)
    return took[WARM_UP:] or took


if __name__ == "__main__":
    main()
