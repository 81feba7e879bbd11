"""``qa eval`` and ``qa tune`` as the command line and the library run them: which index, which encoders, what is kept.

A judged ``.jsonl`` file is asked of the index itself; a BEIR folder is indexed
into its own index (``asked_index``) and asked there. Questions are encoded by
the index's own model unless another is asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

from qa import index
from qa.embed import Embedder, load_query_encoder
from qa.evaluate.beir import evaluate_beir, index_beir
from qa.evaluate.judged import evaluate_judged, load_judged
from qa.evaluate.tune import TuneReport, beir_questions, describe, judged_questions, tune
from qa.indexing import passage_encoder
from qa.search import Searcher
from qa.settings import SearchSettings

#: Cross-validated nDCG@10 over the default below which tuned settings are not worth saving.
MIN_GAIN = 0.005


def asked_index(index_dir: Path, questions: Path | None, beir_index: Path | None = None) -> Path:
    """Return the index ``questions`` are asked of: a BEIR folder's own (``beir_index`` if given, else
    ``INDEX/beir/<folder name>``); a judged file's, or none, the collection's (``index_dir``)."""
    if questions is not None and questions.is_dir():
        return beir_index or index_dir / "beir" / questions.resolve().name
    return index_dir


def question_encoder(index_dir: Path, target: Path, model: str | None, query_encoder: str) -> Embedder:
    """Return the encoder of the questions asked of ``target``: its own model's, unless ``model`` names another."""
    return load_query_encoder(model or index.index_model(target), index_dir / index.MODELS, query_encoder=query_encoder)


def evaluate_questions(questions: Path, target: Path, queries: Embedder, modes: list[str], *,
                       model: str | None = None, encoder: str | None = None, run_dir: Path | None = None,
                       shards: int | None = None, progress: bool = False) -> dict:
    """Score ``modes`` on a judged file or a BEIR folder (its corpus indexed first), asked of ``target``
    (``asked_index``); return the table."""
    if questions.is_dir():
        return evaluate_beir(questions, target, passage_encoder(target, model, encoder), modes, run_dir,
                             progress=progress, query_encoder=queries, shards=shards)
    return evaluate_judged(Searcher(target, embedder=queries), load_judged(questions), modes)


def tune_questions(questions: Path, target: Path, queries: Embedder, *, model: str | None = None,
                   encoder: str | None = None, progress: bool = False) -> TuneReport:
    """Tune the ranking of ``target`` (``asked_index``) on judged questions, a BEIR folder's corpus indexed first."""
    if questions.is_dir():
        texts, qrels = index_beir(questions, target, passage_encoder(target, model, encoder), progress=progress)
        asked = beir_questions(texts)
    else:
        asked, qrels = judged_questions(load_judged(questions))
    reader = Searcher(target, embedder=queries).reader
    return tune(reader, asked, queries.encode([q.text for q in asked]), qrels,
                default=SearchSettings.for_model(reader.manifest.model))


def save_tuning(target: Path, report: TuneReport, questions: Path, force: bool = False) -> str:
    """Record the chosen settings in ``target`` when tuning gains on questions it was not chosen on (or ``force``);
    return what was done, in a sentence."""
    if report.gain <= MIN_GAIN and not force:
        return (f"not saved: tuning gains {report.gain:+.3f} on questions it was not chosen on, so the chosen "
                "settings would fit these questions, not the collection (--force saves them anyway)")
    index.write_tuning(target, {
        # Every setting, not only those that differ from today's defaults: later defaults leave it as tuned.
        "settings": report.chosen.as_dict(),
        "questions": str(questions), "count": report.questions,
        "cross_validated": round(report.tuned_cv, 4), "default": round(report.default, 4),
        "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return (f"saved in {target / index.TUNED}: qa search, qa serve, qa eval and the library now rank with these "
            "settings (qa tune --reset forgets them)")


def reset_tuning(target: Path) -> str:
    """Forget the tuned settings of ``target``; return what was done, in a sentence."""
    index.write_tuning(target, None)
    return f"{target}: searches use the default settings again"


def describe_tuning(tuned: dict, settings) -> str:
    """Say in a line where an index's tuned settings came from and what they are."""
    return (f"ranking tuned on {tuned['count']} questions ({tuned['questions']}) at {tuned['tuned_at']}: "
            f"{describe_settings(settings)}")


def describe_settings(settings) -> str:
    """Name the search settings that differ from the defaults, as ``name=value`` pairs."""
    return ", ".join(f"{k}={v}" for k, v in describe(settings).items()) or "the defaults"


def format_tuning(report: TuneReport) -> str:
    """Render what qa tune found: every ranking on the same questions, and the chosen settings."""
    rows = [(name, value) for name, value in report.modes.items()]
    rows.append((f"tuned, cross-validated ({report.folds} folds)", report.tuned_cv))
    lines = [f"{report.questions} judged questions; nDCG@10 on them:", "| ranking | nDCG@10 |", "|---|---|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in rows]
    verdict = "a real gain" if report.gain > MIN_GAIN else "no gain worth having: keep the default"
    lines.append(f"tuning against the default on the same folds: {report.gain:+.3f} ({verdict})")
    lines.append(f"chosen on all the questions: {describe_settings(report.chosen)} "
                 f"({report.chosen_fit:.3f} on the questions it was chosen on)")
    if report.unheld.questions:
        lines.append(f"left out: {report.unheld.describe(report.questions + len(report.unheld.questions))}")
    return "\n".join(lines)
