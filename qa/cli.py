"""The ``qa`` command line: parse options, call the library, print results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qa.errors import QAError
from qa.settings import DEFAULT_MODE, ENCODERS, MODES, OLD_QUERY_ENCODERS, SENTENCE_VECTORS, ChunkSettings
from qa.terminal import build_notes, describe_document, dumps, format_answer, format_catalogue, printable


def option(*declarations: str, env: str | None = None, **settings):
    """A click option that an environment variable can give, and whose help says so."""
    return click.option(*declarations, envvar=env, show_envvar=env is not None, **settings)


def _query_encoder(ctx, param, value: str) -> str:
    if value in OLD_QUERY_ENCODERS:
        say(f"note: --query-encoder {value} is now --query-encoder {OLD_QUERY_ENCODERS[value]}", err=True)
    return OLD_QUERY_ENCODERS.get(value, value)


FOLDER = click.Path(file_okay=False, path_type=Path)
DOCS_OPTION = option("--docs", "docs_dir", type=FOLDER, default="seeds", show_default=True, env="QA_DOCS",
                     help="Folder of documents: .txt .md .html .pdf .docx .pptx .xlsx .csv .epub .odt .eml .msg .mbox.")
INDEX_OPTION = option("--index", "index_dir", type=FOLDER, default="index", show_default=True, env="QA_INDEX",
                      help="Folder holding the built index.")
MODEL_OPTION = option("--model", env="QA_MODEL", help="Embedding model: all-MiniLM-L6-v2, all-mpnet-base-v2, a local "
                      "model folder, or 'hashing' [default: the index's own; new indexes: all-MiniLM-L6-v2].")
ENCODER_OPTION = option("--encoder", type=click.Choice(ENCODERS), env="QA_ENCODER",
                        help="Encode passages with the model's int8 export (faster) or the fp32 model itself "
                        "[default: as the index was built; new indexes: int8].")
QUERY_ENCODER_OPTION = option("--query-encoder", type=click.Choice((*ENCODERS, *OLD_QUERY_ENCODERS)), default="int8",
                              show_default=True, env="QA_QUERY_ENCODER", callback=_query_encoder,
                              help="Encode questions with the model's int8 export or the fp32 model itself.")
SHARDS_OPTION = option("--shards", type=click.IntRange(1, 256), env="QA_SHARDS",
                       help="Split the collection into this many shards (1: one build) [default: as it is now, else 1].")
SHARDS_RAY_OPTION = option("--ray", "ray_address", metavar="ADDRESS", env="QA_RAY",
                           help="Serve a sharded index's shards from Ray Serve deployments on this cluster; needs qa[ray].")
STRICT_OPTION = option("--strict", is_flag=True, env="QA_STRICT",
                       help="A shard that does not answer fails the search (503) instead of leaving the answer partial.")
SENTENCE_VECTORS_OPTION = option("--sentence-vectors", type=click.Choice(SENTENCE_VECTORS), default="auto",
                                 env="QA_SENTENCE_VECTORS",
                                 help="Pool sentence vectors from each passage's forward pass (late), or encode each "
                                      "(separate) [default: auto: separate for all-mpnet-base-v2, else late].")


def options(*added):
    """Several options as one decorator, in the order listed (as stacked decorators read)."""
    def apply(command):
        for add in reversed(added):
            command = add(command)
        return command

    return apply


BEIR_INDEX_OPTION = click.option("--beir-index", type=click.Path(file_okay=False, path_type=Path),
                                 help="BEIR: index folder for the corpus [default: INDEX/beir/<folder name>].")
#: The documents, their index and the model: what every command that reads a collection takes.
COLLECTION_OPTIONS = options(DOCS_OPTION, INDEX_OPTION, MODEL_OPTION)
#: What qa eval and qa tune take besides their questions.
JUDGED_OPTIONS = options(BEIR_INDEX_OPTION, ENCODER_OPTION, COLLECTION_OPTIONS, QUERY_ENCODER_OPTION)
FILTER_OPTIONS = options(
    option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True,
           help="Retrieval: dense, lexical (BM25), hybrid, or hybrid re-scored by sentences and word proximity."),
    option("--since", metavar="YYYY-MM-DD", help="Only documents dated on or after this day."),
    option("--until", metavar="YYYY-MM-DD", help="Only documents dated on or before this day."),
    option("--source", metavar="FILE", multiple=True, help="Only passages of this document (repeat for several)."),
    option("--folder", metavar="DIR", help="Only documents under this folder of the collection."),
)


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
    from qa.index import raise_open_files_limit

    raise_open_files_limit()


@cli.command("index")
@COLLECTION_OPTIONS
@SENTENCE_VECTORS_OPTION
@click.option("--rebuild", is_flag=True, help="Embed every document again instead of reusing vectors.")
@click.option("--wait", is_flag=True, help="Wait for another running build instead of exiting.")
@click.option("--watch", is_flag=True, help="Then keep the index up to date as documents change, until Ctrl-C.")
@option("--ray", "ray_address", metavar="ADDRESS", env="QA_RAY",
        help="Embed on this Ray cluster's workers (auto, host:6379 or ray://host:10001); needs qa[ray].")
@SHARDS_OPTION
@ENCODER_OPTION
def index_command(docs_dir: Path, index_dir: Path, model: str | None, sentence_vectors: str, rebuild: bool, wait: bool,
                  watch: bool, ray_address: str | None, shards: int | None, encoder: str | None) -> None:
    """Build or refresh the index of the documents folder."""
    from qa.indexing import build, passage_embedder

    chunking = ChunkSettings(sentence_vectors=sentence_vectors)
    embedder = passage_embedder(index_dir, model, encoder, ray_address)
    try:
        report = build(docs_dir, index_dir, embedder, chunking, rebuild=rebuild, progress=True, wait=wait,
                       shards=shards)
    except KeyboardInterrupt:
        from qa.indexing import in_service_summary

        say(f"interrupted: nothing was published; {in_service_summary(index_dir)}", err=True)
        sys.exit(130)
    for line in build_notes(report):  # skipped files and notes on stderr, the summary on stdout
        say(line, err=True)
    click.echo(report.summary())
    if watch:
        from qa.indexing import watch_until_interrupted

        error = watch_until_interrupted(docs_dir, index_dir, embedder, chunking, log=lambda line: say(line, err=True))
        if error is not None:
            raise click.ClickException(f"the watch cannot go on: {error}")


@cli.command("search")
@click.argument("question", required=False)
@click.option("-k", "k", default=5, show_default=True, help="How many passages to return.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer instead of text.")
@click.option("--queries", type=click.File("r", encoding="utf-8"), help='JSON Lines file of {"id", "question"}; '
              'writes one {"id", ...} line per question, with every field of a single --json answer.')
@FILTER_OPTIONS
@COLLECTION_OPTIONS
@QUERY_ENCODER_OPTION
@SHARDS_RAY_OPTION
@STRICT_OPTION
def search_command(question: str | None, k: int, as_json: bool, queries, docs_dir: Path, index_dir: Path,
                   model: str | None, query_encoder: str, ray_address: str | None, strict: bool, **options) -> None:
    """Print the passages that best answer QUESTION."""
    if question is None and queries is None:
        raise click.UsageError("give a QUESTION, or --queries FILE with one question per line")
    if question is not None and queries is not None:
        raise click.UsageError("give a QUESTION or --queries FILE, not both")
    from qa.index import shard_connector
    from qa.search import Searcher, answer_lines

    searcher = Searcher(index_dir, model=model, query_encoder=query_encoder, shards=shard_connector(ray_address),
                        strict=strict)
    _say_if_stale(index_dir, docs_dir)
    if queries is not None:
        failed = 0
        for out in answer_lines(searcher, queries, k, options):
            failed += "error" in out
            click.echo(dumps(out))
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
    say(describe_document(document), err=True)
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
    click.echo(format_catalogue(catalogue))
    say(f"{len(catalogue['documents'])} documents, {len(catalogue['skipped'])} skipped", err=True)
    tuned = searcher.tuning()
    if tuned:
        from qa.evaluate import describe_tuning

        say(describe_tuning(tuned, searcher.settings), err=True)


@cli.command("serve")
@option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@option("--allowed-host", "allowed_hosts", multiple=True, env="QA_ALLOWED_HOSTS",
        help="A Host name clients reach the server by, besides localhost (repeatable; .example.com takes "
        "subdomains; * takes any). Others get 400: a guard against DNS rebinding.")
@option("--token", env="QA_TOKEN", help="Require this token on every request (Authorization: Bearer, or as the Basic "
        "password). Visible to every local user in ps: prefer --token-file or the environment.")
@option("--token-file", type=click.Path(dir_okay=False, path_type=Path), env="QA_TOKEN_FILE",
        help="Read the token from this file (its first line), so it never shows in ps.")
@option("--metrics", is_flag=True, env="QA_METRICS",
        help="Serve /metrics in the Prometheus format, to clients on this machine only.")
@option("--access-log", type=click.Choice(["text", "json", "off"]), default="text", show_default=True,
        env="QA_ACCESS_LOG", help="Access log lines: text, one JSON object per line, or none.")
@option("--log-questions", is_flag=True, env="QA_LOG_QUESTIONS",
        help="Put the query string (the question) in access log lines; left out by default.")
@option("--watch", is_flag=True, help="Rebuild the index when documents change; the server switches to it.")
@COLLECTION_OPTIONS
@QUERY_ENCODER_OPTION
@SENTENCE_VECTORS_OPTION
@SHARDS_OPTION
@SHARDS_RAY_OPTION
@STRICT_OPTION
@ENCODER_OPTION
def serve_command(host: str, port: int, workers: int, allowed_hosts: tuple[str, ...], token: str | None,
                  token_file: Path | None, metrics: bool, access_log: str, log_questions: bool, watch: bool,
                  docs_dir: Path, index_dir: Path, model: str | None, query_encoder: str, sentence_vectors: str,
                  shards: int | None, ray_address: str | None, strict: bool, encoder: str | None) -> None:
    """Serve the question page and JSON API, building the index first when needed."""
    from qa.index import shard_connector
    from qa.web import Served, check_port, leave_now, serving_token, serve_collection

    check_port(host, port)
    token = serving_token(host, token, token_file, warn=lambda line: say(line, err=True))
    served = Served(docs_dir, index_dir, model, encoder, query_encoder, ChunkSettings(sentence_vectors=sentence_vectors),
                    shards, shard_connector(ray_address), strict)
    status = serve_collection(served, host, port, workers, allowed_hosts, token, metrics, access_log, log_questions,
                              watch, greenlets=not ray_address, log=lambda line: say(line, err=True))
    if status is not None:
        leave_now(status)


@cli.command("eval")
@click.argument("questions", type=click.Path(exists=True, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(MODES),
              help="Modes to compare (repeatable); default all.")
@click.option("--runs", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="BEIR: write TREC run files here, one per mode.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as JSON here.")
@click.option("--shards", type=click.IntRange(1, 256), help="BEIR: index the corpus in this many shards.")
@JUDGED_OPTIONS
def eval_command(questions: Path, modes, run_dir, beir_index, json_path, shards, encoder, docs_dir: Path,
                 index_dir: Path, model, query_encoder: str) -> None:
    """Score retrieval modes on QUESTIONS: a judged .jsonl file or a BEIR folder."""
    from qa import evaluate

    target = evaluate.asked_index(index_dir, questions, beir_index)
    queries = evaluate.question_encoder(index_dir, target, model, query_encoder)
    say(f"questions encoded by {queries.name}", err=True)
    if not questions.is_dir():
        _say_if_stale(target, docs_dir)
    table = evaluate.evaluate_questions(questions, target, queries, list(modes) or list(MODES), model=model,
                                        encoder=encoder, run_dir=run_dir, shards=shards, progress=sys.stderr.isatty())
    click.echo(evaluate.format_table(table))
    if json_path is not None:
        json_path.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


@cli.command("tune")
@click.argument("questions", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--save", is_flag=True, help="Record the chosen settings in the index: every search of it uses them "
              "(only when tuning beats the default on questions it was not chosen on; --force saves anyway).")
@click.option("--force", is_flag=True, help="With --save: record the chosen settings even without a gain.")
@click.option("--reset", is_flag=True, help="Forget the index's tuned settings: searches use the defaults again.")
@JUDGED_OPTIONS
def tune_command(questions: Path | None, save: bool, force: bool, reset: bool, beir_index, encoder, docs_dir: Path,
                 index_dir: Path, model, query_encoder: str) -> None:
    """Choose the ranking's settings for this collection on judged QUESTIONS (a .jsonl file or a BEIR folder).

    Prints, on the same questions, every mode, the default, and the cross-validated
    score of tuning (each fold scored by settings chosen on the others), so a gain
    can be told from a fit. --save records the chosen settings in the index.
    """
    from qa import evaluate

    if questions is None and not reset:
        raise click.UsageError("give QUESTIONS to tune on, or --reset")
    if reset:
        click.echo(evaluate.reset_tuning(beir_index or evaluate.asked_index(index_dir, questions)))
        return
    target = evaluate.asked_index(index_dir, questions, beir_index)
    queries = evaluate.question_encoder(index_dir, target, model, query_encoder)
    report = evaluate.tune_questions(questions, target, queries, model=model, encoder=encoder,
                                     progress=sys.stderr.isatty())
    click.echo(evaluate.format_tuning(report))
    if save:
        click.echo(evaluate.save_tuning(target, report, questions, force))


def _say_if_stale(index_dir: Path, docs_dir: Path) -> None:
    from qa.indexing import stale_warning

    if warning := stale_warning(index_dir, docs_dir):
        say(warning, err=True)


def say(text: str, err: bool = False) -> None:
    """Print a line that may quote file names or document text, neutralised for the terminal."""
    click.echo(printable(text), err=err)


def main() -> None:
    cli(prog_name="qa")
