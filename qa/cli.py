"""The ``qa`` command line: parse options, call the library, print results."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from qa.errors import BadRequest, QAError
from qa.settings import DEFAULT_MODE, MODES, SENTENCE_VECTORS, ChunkSettings
from qa.terminal import dumps, format_answer, printable

# Kept here rather than imported from qa.embed, so that `qa --help` loads neither numpy nor FAISS.
QUERY_ENCODERS = ("onnx", "torch")

DOCS_OPTION = click.option(
    "--docs",
    "docs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="seeds",
    envvar="QA_DOCS",
    show_default=True,
    show_envvar=True,
    help="Folder of documents: .txt .md .html .pdf .docx .pptx .xlsx .csv .epub .odt .eml .msg.",
)
INDEX_OPTION = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="index",
    envvar="QA_INDEX",
    show_default=True,
    show_envvar=True,
    help="Folder holding the built index.",
)
MODEL_OPTION = click.option(
    "--model",
    envvar="QA_MODEL",
    default=None,
    show_envvar=True,
    help="Embedding model: all-MiniLM-L6-v2 (default), a local model folder, or 'hashing'.",
)
QUERY_ENCODER_OPTION = click.option(
    "--query-encoder",
    type=click.Choice(QUERY_ENCODERS),
    default="onnx",
    envvar="QA_QUERY_ENCODER",
    show_default=True,
    show_envvar=True,
    help="Encode questions with the int8 ONNX export of the default model, or with torch.",
)
SHARDS_OPTION = click.option(
    "--shards",
    type=click.IntRange(1, 256),
    envvar="QA_SHARDS",
    show_envvar=True,
    help="Split the collection into this many shards (1: one build) [default: as the index is now, else 1].",
)
SHARDS_RAY_OPTION = click.option(
    "--ray", "ray_address", metavar="ADDRESS", envvar="QA_RAY", show_envvar=True,
    help="Serve a sharded index's shards from Ray Serve deployments on this cluster; needs qa[ray].",
)
STRICT_OPTION = click.option(
    "--strict", is_flag=True, envvar="QA_STRICT", show_envvar=True,
    help="A shard that does not answer fails the search (503) instead of leaving the answer partial.",
)
ENCODER_OPTION = click.option(
    "--encoder",
    type=click.Choice(("int8", "fp32")),
    envvar="QA_ENCODER",
    show_envvar=True,
    help="Embed passages with the int8 onnxruntime export of the default model (about twice as fast) or the "
    "fp32 model [default: what built the index; new indexes: int8].",
)
SENTENCE_VECTORS_OPTION = click.option(
    "--sentence-vectors",
    type=click.Choice(SENTENCE_VECTORS),
    default="late",
    envvar="QA_SENTENCE_VECTORS",
    show_default=True,
    show_envvar=True,
    help="Pool sentence vectors from each passage's forward pass (late), or encode each sentence.",
)


def FILTER_OPTIONS(command):
    """Add the retrieval mode and the date/source filters to a command."""
    for option in reversed(
        [
            click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True,
                         help="Retrieval: dense, lexical (BM25), hybrid, or hybrid re-scored by sentences and word proximity."),
            click.option("--since", metavar="YYYY-MM-DD", help="Only documents dated on or after this day."),
            click.option("--until", metavar="YYYY-MM-DD", help="Only documents dated on or before this day."),
            click.option("--source", metavar="FILE", multiple=True,
                         help="Only passages of this document (path as listed; repeat for several)."),
            click.option("--folder", metavar="DIR", help="Only documents under this folder of the collection."),
        ]
    ):
        command = option(command)
    return command


class QAGroup(click.Group):
    """Turn library errors into one-line messages and exit code 1 (2 for bad input)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except QAError as exc:
            say(f"Error: {exc}", err=True)
            ctx.exit(2 if exc.status == 400 else 1)


@click.group(cls=QAGroup)
@click.version_option(package_name="qa")
def cli() -> None:
    """Offline extractive question answering over a folder of documents."""
    raise_open_files_limit()


def raise_open_files_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit.

    An index in shards holds two descriptors per shard in every worker, and one
    more per search in flight; the usual soft limit of 1,024 runs out at a few
    hundred shards while the hard limit is far above. (Python servers and
    databases do the same at start-up.)
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass  # a container may refuse; the limit stays as it was


@cli.command("index")
@DOCS_OPTION
@INDEX_OPTION
@MODEL_OPTION
@SENTENCE_VECTORS_OPTION
@click.option("--rebuild", is_flag=True, help="Embed every document again instead of reusing vectors.")
@click.option("--wait", is_flag=True, help="Wait for another running build instead of exiting.")
@click.option("--watch", is_flag=True, help="Then keep the index up to date as documents change, until Ctrl-C.")
@click.option("--ray", "ray_address", metavar="ADDRESS", envvar="QA_RAY", show_envvar=True,
              help="Embed on this Ray cluster's workers (auto, host:6379 or ray://host:10001); needs qa[ray].")
@SHARDS_OPTION
@ENCODER_OPTION
def index_command(
    docs_dir: Path, index_dir: Path, model: str | None, sentence_vectors: str, rebuild: bool, wait: bool, watch: bool,
    ray_address: str | None, shards: int | None, encoder: str | None,
) -> None:
    """Build or refresh the index of the documents folder."""
    from qa.indexing import build, passage_encoder

    settings = ChunkSettings(sentence_vectors=sentence_vectors)
    if ray_address:
        from qa.embed import RayEmbedder

        # The workers run the encoder the index was built with (int8 for a new one), as a local build would.
        model = RayEmbedder(ray_address, passage_encoder(index_dir, model, encoder))
    else:
        model = passage_encoder(index_dir, model, encoder)
    try:
        report = build(docs_dir, index_dir, model, settings, rebuild=rebuild, progress=True, wait=wait, shards=shards)
    except KeyboardInterrupt:
        say(f"interrupted: nothing was published; {_in_service(index_dir)}", err=True)
        sys.exit(130)
    _report(report)
    if watch:
        from qa.ingest import FAILED

        from qa.indexing import watch

        watcher = watch(docs_dir, index_dir, model, settings, log=lambda line: say(line, err=True))
        try:
            while watcher.state != FAILED:
                time.sleep(0.5)
        except KeyboardInterrupt:
            watcher.stop()
            return
        watcher.stop()
        raise click.ClickException(f"the watch cannot go on: {watcher.error}")


def _in_service(index_dir: Path) -> str:
    """Say what a stopped build left in service: the build before it, or nothing."""
    from qa import index

    manifest, shards = index.in_service(index_dir)
    if manifest is None:
        return f"{index_dir} holds no index yet"
    parts = f" in {shards} shards" if shards > 1 else ""
    return (f"the index in service is unchanged: {manifest.document_count} documents, {manifest.passage_count} "
            f"passages{parts}, built {manifest.built_at}")


def _report(report) -> None:
    """Print what a build did: skipped files and notes on stderr, the summary on stdout."""
    for skipped in report.skipped:
        say(f"skipped {printable(skipped.source, keep_newlines=False)}: {skipped.reason}", err=True)
    for source, note in report.notes:
        say(f"note {printable(source, keep_newlines=False)}: {note}", err=True)
    click.echo(report.summary())


@cli.command("search")
@click.argument("question", required=False)
@click.option("-k", "k", default=5, show_default=True, help="How many passages to return.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer instead of text.")
@click.option(
    "--queries",
    type=click.File("r", encoding="utf-8"),
    help='JSON Lines file of {"id", "question"}; writes one {"id", ...} line per question, with every '
    "field of a single --json answer.",
)
@FILTER_OPTIONS
@DOCS_OPTION
@INDEX_OPTION
@MODEL_OPTION
@QUERY_ENCODER_OPTION
@SHARDS_RAY_OPTION
@STRICT_OPTION
def search_command(
    question: str | None,
    k: int,
    as_json: bool,
    queries,
    docs_dir: Path,
    index_dir: Path,
    model: str | None,
    query_encoder: str,
    ray_address: str | None,
    strict: bool,
    **options,
) -> None:
    """Print the passages that best answer QUESTION."""
    if question is None and queries is None:
        raise click.UsageError("give a QUESTION, or --queries FILE with one question per line")
    if question is not None and queries is not None:
        raise click.UsageError("give a QUESTION or --queries FILE, not both")
    from qa.search import Searcher

    searcher = Searcher(index_dir, model=model, query_encoder=query_encoder, shards=_shard_connector(ray_address),
                        strict=strict)
    _warn_if_stale(searcher, docs_dir)
    if queries is not None:
        failed = _run_queries(searcher, queries, k, options)
        if failed:
            raise click.ClickException(f"{failed} queries failed; see their error lines")
        return
    answer = searcher.search(question, k, **options)
    if as_json:
        click.echo(dumps(answer.as_dict(), indent=2))
    else:
        click.echo(format_answer(answer.as_dict(), bold=sys.stdout.isatty()))


@cli.command("publish")
@click.option("--from", "source", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The index folder to copy the build from (its current build unless --build).")
@click.option("--build", help="The name of the build to copy (a folder under FROM/builds/).")
@INDEX_OPTION
def publish_command(source: Path, build: str | None, index_dir: Path) -> None:
    """Copy a build into this index folder, check it arrived whole, and put it in service.

    How replicas follow a builder: a qa serve on INDEX switches to the build by itself.
    """
    from qa.index import publish_copy

    folder, changed = publish_copy(source, index_dir, build)
    if changed:
        click.echo(f"{folder.name} copied from {source} and in service in {index_dir}")
    else:
        click.echo(f"{folder.name} is already in service in {index_dir}")


@cli.command("show")
@click.argument("source")
@click.option("--start", type=click.IntRange(0), help="First character of the span (default: the beginning).")
@click.option("--end", type=click.IntRange(0), help="Character after the span (default: the end).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API's /api/document returns.")
@INDEX_OPTION
@MODEL_OPTION
def show_command(source: str, start: int | None, end: int | None, as_json: bool, index_dir: Path, model) -> None:
    """Print a document's text layer as indexed, or the span a result cites (--start/--end)."""
    from qa.search import Searcher

    document = Searcher(index_dir, model=model).document(source, start, end)
    if as_json:
        click.echo(dumps(document, indent=2))
        return
    pages = f", {len(document['pages'])} pages" if document["pages"] else ""
    encoding = f", read as {document['encoding']}" if document["encoding"] not in (None, "utf-8") else ""
    say(f"{document['source']} ({document['format']}{encoding}{pages}), characters {document['start']}-{document['end']} "
        f"of {document['length']}", err=True)
    click.echo(printable(document["text"]))


@cli.command("documents")
@click.option("--folder", metavar="DIR", help="Only documents under this folder of the collection.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API's /api/documents returns.")
@INDEX_OPTION
@MODEL_OPTION
def documents_command(folder: str | None, as_json: bool, index_dir: Path, model) -> None:
    """List the indexed documents, and the files that were skipped and why."""
    from qa.search import Searcher

    searcher = Searcher(index_dir, model=model)
    catalogue = searcher.documents(folder)
    if as_json:
        click.echo(dumps(catalogue, indent=2))
        return
    for d in catalogue["documents"]:
        pages = f", {d['pages']} pages" if d["pages"] else ""
        encoding = f", {d['encoding']}" if d["encoding"] not in (None, "utf-8") else ""
        line = f"{d['source']}  [{d['format']}{encoding}{pages}, {d['passages']} passages]  {d['date'] or 'no date'}  "
        say(line + (d["title"] or "(untitled)") + (f" - {d['author']}" if d["author"] else ""))
    for s in catalogue["skipped"]:
        say(f"skipped {s['source']}: {s['reason']}")
    say(f"{len(catalogue['documents'])} documents, {len(catalogue['skipped'])} skipped", err=True)
    tuned = searcher.tuning()
    if tuned:
        say(f"ranking tuned on {tuned['count']} questions ({tuned['questions']}) at {tuned['tuned_at']}: "
            f"{describe_settings(searcher.settings)}", err=True)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--allowed-host", "allowed_hosts", multiple=True, envvar="QA_ALLOWED_HOSTS", show_envvar=True,
    help="A Host name clients reach the server by, besides localhost (repeatable; .example.com takes "
    "subdomains; * takes any). Others get 400: a guard against DNS rebinding.",
)
@click.option("--token", envvar="QA_TOKEN", show_envvar=True,
              help="Require this token on every request (Authorization: Bearer, or as the Basic password). "
              "Visible to every local user in ps: prefer --token-file or the environment.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), envvar="QA_TOKEN_FILE",
              show_envvar=True, help="Read the token from this file (its first line), so it never shows in ps.")
@click.option("--metrics", is_flag=True, envvar="QA_METRICS", show_envvar=True,
              help="Serve /metrics in the Prometheus format, to clients on this machine only.")
@click.option("--access-log", type=click.Choice(["text", "json", "off"]), default="text", show_default=True,
              envvar="QA_ACCESS_LOG", show_envvar=True, help="Access log lines: text, one JSON object per line, or none.")
@click.option("--log-questions", is_flag=True, envvar="QA_LOG_QUESTIONS", show_envvar=True,
              help="Put the query string (the question) in access log lines; left out by default.")
@click.option("--watch", is_flag=True, help="Rebuild the index when documents change; the server switches to it.")
@DOCS_OPTION
@INDEX_OPTION
@MODEL_OPTION
@QUERY_ENCODER_OPTION
@SENTENCE_VECTORS_OPTION
@SHARDS_OPTION
@SHARDS_RAY_OPTION
@STRICT_OPTION
@ENCODER_OPTION
def serve_command(
    host: str, port: int, workers: int, allowed_hosts: tuple[str, ...], token: str | None, token_file: Path | None,
    metrics: bool,
    access_log: str, log_questions: bool, watch: bool, docs_dir: Path, index_dir: Path, model: str | None,
    query_encoder: str, sentence_vectors: str, shards: int | None, ray_address: str | None, strict: bool,
    encoder: str | None,
) -> None:
    """Serve the question page and JSON API, building the index first when needed."""
    from qa import index
    from qa.indexing import BackgroundBuild, passage_encoder, watch
    from qa.errors import NoDocuments
    from qa.search import Searcher
    from qa.web import create_app, serve, served_hosts

    hosts = served_hosts(host, allowed_hosts)
    check_port(host, port)
    if token_file is not None:
        if token:
            raise click.UsageError("give --token or --token-file, not both")
        token = read_token(token_file)
    if not token and not is_loopback(host):
        say(f"warning: serving on {host} without --token: anyone who can reach this port can read "
            "the documents", err=True)
    settings = ChunkSettings(sentence_vectors=sentence_vectors)
    builder = passage_encoder(index_dir, model, encoder)
    if not docs_dir.is_dir() and index.current_build(index_dir) is None:
        raise NoDocuments(f"documents folder not found: {docs_dir}, and {index_dir} holds no index to serve")
    # Each worker connects to the shards on its first search: Ray does not survive a fork.
    searcher = Searcher(index_dir, model=model, query_encoder=query_encoder, shards=_shard_connector(ray_address),
                        strict=strict)
    searcher.embedder  # load the question encoder once, in the master, before the workers fork
    if metrics:
        # Before the app makes its metrics: each worker then writes its counts where a scrape adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="qa-metrics-")
    config = {"QA_INDEX": str(index_dir), "QA_DOCS": str(docs_dir), "QA_ALLOWED_HOSTS": hosts, "QA_TOKEN": token or None,
              "QA_METRICS": metrics}
    app = create_app(config, searcher=searcher)
    shared = app.extensions["qa.status"]  # read by every worker's pages and /healthz
    # The index is built (or brought up to date) while the server answers: 503 with Retry-After until it is there.
    BackgroundBuild(docs_dir, index_dir, builder, settings, shards, log=lambda line: say(line, err=True),
                    on_state=lambda state: shared.update(building=state)).start()
    click.echo(f"serving {index_dir} on http://{host}:{port}/", err=True)
    # In the master, after the app is loaded: forked workers get no copy of its threads, and
    # they switch to each new build by themselves.
    watcher = None
    if watch:
        watcher = watch(docs_dir, index_dir, builder, settings, log=lambda line: say(line, err=True),
                        on_state=lambda st: shared.update(watch=st), on_build=lambda st: shared.update(building=st))
        shared.update(watch=watcher.status())
    status = None
    try:
        # Ray's client aborts under gevent: shards on Ray Serve are served by threaded workers.
        serve(app, host, port, workers, access_log=access_log, log_questions=log_questions, greenlets=not ray_address)
    except SystemExit as exc:  # gunicorn's master leaves by sys.exit, on Ctrl-C too
        status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        if watcher is not None:
            watcher.stop()
        if metrics:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
    if status is not None:
        # The server has stopped and nothing is left to write: leave now, without the interpreter's
        # teardown of watchdog's threads, onnxruntime and the extraction fork server.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


@cli.command("eval")
@click.argument("questions", type=click.Path(exists=True, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(MODES),
              help="Modes to compare (repeatable); default all.")
@click.option("--runs", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="BEIR: write TREC run files here, one per mode.")
@click.option("--beir-index", type=click.Path(file_okay=False, path_type=Path),
              help="BEIR: index folder for the corpus [default: INDEX/beir/<folder name>].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as JSON here.")
@click.option("--shards", type=click.IntRange(1, 256), help="BEIR: index the corpus in this many shards.")
@ENCODER_OPTION
@DOCS_OPTION
@INDEX_OPTION
@MODEL_OPTION
@QUERY_ENCODER_OPTION
def eval_command(
    questions: Path, modes, run_dir, beir_index, json_path, shards, encoder, docs_dir: Path, index_dir: Path, model,
    query_encoder: str,
) -> None:
    """Score retrieval modes on QUESTIONS: a judged .jsonl file or a BEIR folder."""
    from qa import evaluate, index
    from qa.embed import load_query_encoder
    from qa.search import Searcher

    modes = list(modes) or list(MODES)
    if questions.is_dir():
        beir_index = beir_index or index_dir / "beir" / questions.resolve().name
    model = model or index.index_model(beir_index if questions.is_dir() else index_dir)  # the index's own
    queries = load_query_encoder(model, index_dir / index.MODELS, query_encoder=query_encoder)
    say(f"questions encoded by {queries.name}", err=True)
    if questions.is_dir():
        from qa.indexing import passage_encoder

        table = evaluate.evaluate_beir(
            questions, beir_index, passage_encoder(beir_index, model, encoder), modes, run_dir,
            progress=sys.stderr.isatty(), query_encoder=queries, shards=shards,
        )
    else:
        searcher = Searcher(index_dir, embedder=queries)
        _warn_if_stale(searcher, docs_dir)
        table = evaluate.evaluate_judged(searcher, evaluate.load_judged(questions), modes)
    click.echo(evaluate.format_table(table))
    if json_path is not None:
        json_path.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


@cli.command("tune")
@click.argument("questions", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--save", is_flag=True, help="Record the chosen settings in the index: every search of it uses them "
              "(only when tuning beats the default on questions it was not chosen on; --force saves anyway).")
@click.option("--force", is_flag=True, help="With --save: record the chosen settings even without a gain.")
@click.option("--reset", is_flag=True, help="Forget the index's tuned settings: searches use the defaults again.")
@click.option("--beir-index", type=click.Path(file_okay=False, path_type=Path),
              help="BEIR: index folder for the corpus [default: INDEX/beir/<folder name>].")
@ENCODER_OPTION
@DOCS_OPTION
@INDEX_OPTION
@MODEL_OPTION
@QUERY_ENCODER_OPTION
def tune_command(
    questions: Path | None, save: bool, force: bool, reset: bool, beir_index, encoder, docs_dir: Path,
    index_dir: Path, model, query_encoder: str,
) -> None:
    """Choose the ranking's settings for this collection on judged QUESTIONS (a .jsonl file or a BEIR folder).

    Prints, on the same questions, every mode, the default, and the cross-validated
    score of tuning (each fold scored by settings chosen on the others), so a gain
    can be told from a fit. --save records the chosen settings in the index.
    """
    from qa import evaluate, index
    from qa.embed import load_query_encoder
    from qa.search import Searcher

    if reset:
        target = beir_index or (index_dir / "beir" / questions.resolve().name if questions and questions.is_dir()
                                else index_dir)
        index.write_tuning(target, None)
        click.echo(f"{target}: searches use the default settings again")
        return
    if questions is None:
        raise click.UsageError("give QUESTIONS to tune on, or --reset")
    target = (beir_index or index_dir / "beir" / questions.resolve().name) if questions.is_dir() else index_dir
    model = model or index.index_model(target)  # the index's own model unless another is asked for
    queries = load_query_encoder(model, index_dir / index.MODELS, query_encoder=query_encoder)
    if questions.is_dir():
        from qa.indexing import passage_encoder

        texts, qrels = evaluate.index_beir(questions, target, passage_encoder(target, model, encoder),
                                           progress=sys.stderr.isatty())
        asked = evaluate.beir_questions(texts)
    else:
        asked, qrels = evaluate.judged_questions(evaluate.load_judged(questions))
    searcher = Searcher(target, embedder=queries)
    report = evaluate.tune(searcher.reader, asked, queries.encode([q.text for q in asked]), qrels)
    click.echo(format_tuning(report))
    if save and report.gain <= MIN_GAIN and not force:
        click.echo(f"not saved: tuning gains {report.gain:+.3f} on questions it was not chosen on, so the chosen "
                   "settings would fit these questions, not the collection (--force saves them anyway)")
    elif save:
        index.write_tuning(target, {
            # Every setting, not only those that differ from today's defaults: later defaults leave it as tuned.
            "settings": report.chosen.as_dict(),
            "questions": str(questions), "count": report.questions,
            "cross_validated": round(report.tuned_cv, 4), "default": round(report.default, 4),
            "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        click.echo(f"saved in {target / index.TUNED}: qa search, qa serve, qa eval and the library now rank "
                   "with these settings (qa tune --reset forgets them)")


#: Cross-validated nDCG@10 over the default below which tuned settings are not worth saving.
MIN_GAIN = 0.005


def describe_settings(settings) -> str:
    """Name the search settings that differ from the defaults, as ``name=value`` pairs."""
    from qa.evaluate import describe

    return ", ".join(f"{k}={v}" for k, v in describe(settings).items()) or "the defaults"


def format_tuning(report) -> str:
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


def _shard_connector(ray_address: str | None):
    """Return how to reach a sharded index's shards: Ray Serve deployments, or (None) this process."""
    if not ray_address:
        return None
    from qa.index import RayShards

    return RayShards(ray_address)


def _warn_if_stale(searcher, docs_dir: Path) -> None:
    from qa.indexing import stale_reason

    reader = searcher.reader
    if docs_dir.is_dir() and (reason := stale_reason(reader, docs_dir, reader.chunking)):
        say(f"warning: the index is stale: {reason}; run `qa index`", err=True)


def _run_queries(searcher, lines, k: int, options: dict) -> int:
    """Answer each JSON line, writing one result line per query; return how many failed."""
    failed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        qid = None
        try:
            item = json.loads(line)
            if isinstance(item, dict):
                qid = item.get("id")  # known before anything else is checked, so an error line keeps it
            if not isinstance(item, dict) or "question" not in item:
                raise BadRequest('each line must be a JSON object with a "question"')
            answer = searcher.search(item["question"], item.get("k", k), **options)
            out = {"id": qid, **answer.as_dict()}
        except (ValueError, BadRequest) as exc:
            failed += 1
            out = {"id": qid, "error": f"line {number}: {exc}"}
        click.echo(dumps(out))
    return failed




def check_port(host: str, port: int) -> None:
    """Stop with a clear message when ``host:port`` cannot be listened on, before any work is done.

    gunicorn would print that it is serving, then retry for five seconds and exit.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(f"port {port} on {host} is taken by another program: stop it, or "
                                           "choose another with --port") from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def read_token(path: Path) -> str:
    """Return the token in the first line of ``path``, or stop with a message saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                                 param_hint="--token-file") from None
    if not token:
        raise click.BadParameter(f"{path} holds no token on its first line", param_hint="--token-file")
    return token


def is_loopback(host: str) -> bool:
    """Return whether binding ``host`` keeps the server to this machine."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def say(text: str, err: bool = False) -> None:
    """Print a line that may quote file names or document text, neutralised for the terminal."""
    click.echo(printable(text), err=err)


def main() -> None:
    cli(prog_name="qa")
