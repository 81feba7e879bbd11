from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.records import Passage, Result
from qa.records import Answer
from qa.search import MAX_K, Searcher
from qa.web import MAX_BODY_BYTES, create_app
from qa.web.pages import segments


@pytest.fixture
def app(index_dir, embedder):
    return create_app({"TESTING": True}, searcher=Searcher(index_dir, embedder=embedder))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def empty_client(tmp_path, embedder):
    """A client whose index folder holds no index."""
    app = create_app({"TESTING": True}, searcher=Searcher(tmp_path / "none", embedder=embedder))
    return app.test_client()


def test_get_search_returns_answer_shape(client):
    response = client.get("/api/search?q=Kursk+region&k=2")
    assert response.status_code == 200
    data = response.get_json()
    assert list(data) == ["question", "results", "took_ms", "mode", "low_confidence", "excluded_undated", "unknown_names", "missing_shards"]
    assert data["question"] == "Kursk region"
    assert len(data["results"]) == 2
    assert data["results"][0]["source"] == "002_42f21bd48c4da039.txt"


def test_post_search_equals_get(client):
    post = client.post("/api/search", json={"question": "INF Treaty suspended", "k": 3}).get_json()
    get = client.get("/api/search?q=INF+Treaty+suspended&k=3").get_json()
    assert post["results"] == get["results"]


def test_api_results_equal_cli_json(client, docs, index_dir):
    env = {"QA_DOCS": str(docs), "QA_INDEX": str(index_dir), "QA_MODEL": "hashing"}
    out = CliRunner().invoke(cli, ["search", "Lavrov CBS interview", "--json", "-k", "4"], env=env)
    assert out.exit_code == 0, out.output
    api = client.get("/api/search", query_string={"q": "Lavrov CBS interview", "k": 4}).get_json()
    assert api["results"] == json.loads(out.output)["results"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "missing query parameter q"),
        ("?q=", "question is empty"),
        ("?q=+++", "question is empty"),
        ("?q=" + "x" * 1001, "longer than 1000"),
        ("?q=ok&k=0", "between 1 and"),
        ("?q=ok&k=-1", "whole number"),
        (f"?q=ok&k={MAX_K + 1}", "between 1 and"),
        ("?q=ok&k=abc", "whole number"),
        ("?q=ok&k=1000000000", "between 1 and"),
        ("?q=ok&color=red", "unknown query parameter: color"),
        ("?q=a&q=b", "more than once"),
    ],
)
def test_get_bad_input_is_400_json(client, query, message):
    response = client.get("/api/search" + query)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, 'missing field "question"'),
        ({"question": ""}, "empty"),
        ({"question": 5}, "must be a string"),
        ({"question": None}, "must be a string"),
        ({"question": ["a"]}, "must be a string"),
        ({"question": "ok", "k": "abc"}, "whole number"),
        ({"question": "ok", "k": 1.5}, "whole number"),
        ({"question": "ok", "k": True}, "whole number"),
        ({"question": "ok", "k": 0}, "between"),
        ({"question": "ok", "extra": 1}, "unknown field: extra"),
        ([1, 2], "JSON object"),
        ("question", "JSON object"),
    ],
)
def test_post_bad_input_is_400_json(client, body, message):
    response = client.post("/api/search", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_hundred_kilobyte_question_is_refused_with_json(client):
    huge = "why " * 25_000
    get = client.get("/api/search", query_string={"q": huge})
    assert get.status_code == 400 and "longer than 1000" in get.get_json()["error"]
    post = client.post("/api/search", json={"question": huge})
    assert post.status_code == 413 and post.get_json()["error"]
    assert client.get("/", query_string={"q": huge}).status_code == 400


def test_post_malformed_json_is_400(client):
    response = client.post("/api/search", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]


def test_post_wrong_content_type_is_415(client):
    response = client.post("/api/search", data="question=hi", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]


def test_post_too_large_body_is_413(client):
    body = json.dumps({"question": "x" * (MAX_BODY_BYTES + 1)})
    response = client.post("/api/search", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.get_json()


def test_wrong_method_is_405_json(client):
    response = client.put("/api/search", json={"question": "x"})
    assert response.status_code == 405
    assert "error" in response.get_json()
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]
    assert client.post("/healthz").status_code == 405


def test_wrong_method_on_the_page_is_405_with_allow(client):
    response = client.post("/")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"question": "\\ud800 treaty"}', "question is not valid Unicode"),
        ('{"question": "treaty", "source": "a\\udfff.txt"}', "source is not valid Unicode"),
        ('{"question": "treaty", "k": "' + "9" * 5000 + '"}', "between 1 and"),
        ('{"question": "treaty", "k": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"question": ' + "[" * 5000 + "]" * 5000 + "}", "not valid JSON"),
        ("[" * 100_00 + "]" * 100_00, "exceeds the capacity limit"),
    ],
    ids=["surrogate-question", "surrogate-source", "k-digits-string", "k-digits-number", "deep-nesting", "deep-and-big"],
)
def test_hostile_bodies_are_json_4xx(client, raw, message):
    response = client.post("/api/search", data=raw, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert message in response.get_json()["error"]


def test_k_with_thousands_of_digits_in_a_url_is_400(client):
    response = client.get("/api/search", query_string={"q": "treaty", "k": "1" * 5000})
    assert response.status_code == 400 and "between 1 and" in response.get_json()["error"]


def test_a_chunked_body_over_the_limit_is_413_not_cut(client):
    import io

    body = json.dumps({"question": "treaty " + "x" * MAX_BODY_BYTES}).encode()
    response = client.post(
        "/api/search",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413 and "larger than" in response.get_json()["error"]


def test_unknown_api_route_is_404_json(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "error" in response.get_json()


def test_no_index_is_503_everywhere(empty_client):
    assert empty_client.get("/api/search?q=x").status_code == 503
    assert "run `qa index`" in empty_client.post("/api/search", json={"question": "x"}).get_json()["error"]
    health = empty_client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["status"] == "unavailable"
    page = empty_client.get("/?q=x")
    assert page.status_code == 503 and b"Could not answer" in page.data
    assert empty_client.get("/").status_code == 200  # the form still shows


def test_healthz_reports_the_index(client):
    data = client.get("/healthz").get_json()
    assert data["status"] == "ok" and data["documents"] == 5 and data["model"] == "hashing:256"
    assert data["passages"] > 5 and data["built_at"]


def test_openapi_describes_routes_and_limits(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {"/api/search", "/api/document", "/api/documents", "/file", "/healthz",
                                  "/api/openapi.json"}
    assert {"200", "206", "304", "404", "409", "410", "503"} <= set(spec["paths"]["/file"]["get"]["responses"])
    post = spec["paths"]["/api/search"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["question"]["maxLength"] == 1000
    assert schema["properties"]["k"]["maximum"] == MAX_K
    assert {"200", "400", "413", "415", "503"} <= set(post["responses"])
    result = spec["components"]["schemas"]["Result"]
    answer = client.get("/api/search?q=Kursk").get_json()
    assert set(result["required"]) == set(answer["results"][0])


def test_page_empty_state_has_labelled_form(client):
    html = client.get("/").get_data(as_text=True)
    assert '<label for="q">' in html and 'id="q" name="q"' in html
    assert 'method="get"' in html
    assert '<label for="k">' in html


def test_every_suggested_question_answers_and_titles_are_links_to_browse(client):
    import re
    from html import unescape

    html = client.get("/").get_data(as_text=True)
    examples = [unescape(t) for t in re.findall(r'<li><a href="/\?q=[^"]*">([^<]*)</a></li>', html)]
    assert examples and 'placeholder="e.g. ' + examples[0] in unescape(html)
    for example in examples:  # each one asked: an answer from the documents, not flagged, not only weaker matches
        answer = client.get("/api/search", query_string={"q": example, "k": 3}).get_json()
        assert answer["results"] and not answer["low_confidence"] and not answer["results"][0]["weaker"], example
    # The newest documents' titles are for browsing: links to the document, not questions.
    newest = re.findall(r'<li><a href="/document\?source=[^"]*">([^<]*)</a></li>', html)
    assert unescape(newest[0]) == "The main news of the past week was undoubtedly the conversation between Putin and Trump"
    assert not set(map(unescape, newest)) & set(examples)


def test_page_without_an_index_offers_no_examples(empty_client):
    html = empty_client.get("/").get_data(as_text=True)
    assert "Try asking" not in html and 'placeholder="e.g.' not in html


def test_page_shows_cited_results(client):
    html = client.get("/?q=INF+Treaty+February+2019&k=3").get_data(as_text=True)
    assert html.count('<li class="result') == 3  # "result", or "result weaker" under the divider
    assert "004_027c9bdda43207c8.txt" in html
    assert '<time datetime="2024-01-24">' in html
    assert "Angeline Tan" in html
    assert 'selected>3<' in html


def test_page_links_urls_safely(client):
    html = client.get("/?q=goodwill+snubbed+Putin+CBS+interview&k=10").get_data(as_text=True)
    assert 'href="https://sputnikglobe.com/' in html
    assert 'rel="noopener noreferrer"' in html


def test_page_bad_input_shows_error_state(client):
    response = client.get("/?q=+")
    assert response.status_code == 400
    assert b"Could not answer.</strong> Question is empty." in response.data


class FixedSearcher:
    """A Searcher stand-in that returns one hand-made passage."""

    def __init__(self, passage: Passage, highlights=()):
        self.result = Result(rank=1, score=0.5, passage=passage, highlights=highlights)

    def search(self, question, k=5, **options):
        return Answer(question, [self.result], 1.0)

    def suggestions(self, n=3):
        return [self.result.passage.title]

    def newest(self, n=3):
        return [(self.result.passage.source, self.result.passage.title)]

    def documents(self, folder=None):
        return {"documents": [], "skipped": []}

    def sources(self, most):
        return [self.result.passage.source]


def test_page_escapes_everything_from_documents():
    evil = Passage(
        id="x.txt:0-40",
        text='a < b && c > "d" <script>alert(1)</script>',
        source="<b>x</b>.txt",
        start=0,
        end=40,
        title='Title "quoted" & <i>tagged</i>',
        date="2024-01-01",
        url='javascript:alert("x")',
        author="<img src=x onerror=alert(1)>",
    )
    app = create_app({"TESTING": True}, searcher=FixedSearcher(evil, highlights=((6, 10),)))
    html = app.test_client().get('/?q=<script>"&amp;').get_data(as_text=True)
    assert "<script>" not in html and "<img" not in html and "<i>" not in html and "<b>x" not in html
    assert "a &lt; b <mark>&amp;&amp; c</mark> &gt; &#34;d&#34; &lt;script&gt;" in html
    assert "Title &#34;quoted&#34; &amp; &lt;i&gt;tagged&lt;/i&gt;" in html
    assert "javascript:" not in html  # a non-http URL is not linked


def test_page_nothing_found_state():
    class Nothing(FixedSearcher):
        def search(self, question, k=5, **options):
            return Answer(question, [], 1.0)

    app = create_app({"TESTING": True}, searcher=Nothing(Passage("x:0-1", "x", "x", 0, 1)))
    assert b"Nothing relevant found" in app.test_client().get("/?q=anything").data


def test_security_headers_on_pages_and_api(client):
    for url in ("/", "/api/search?q=x", "/nope"):
        headers = client.get(url).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "highlights, expected",
    [
        ([], [("abcdef", False)]),
        ([[1, 3]], [("a", False), ("bc", True), ("def", False)]),
        ([[0, 2], [4, 6]], [("ab", True), ("cd", False), ("ef", True)]),
        ([[1, 4], [2, 5]], [("a", False), ("bcde", True), ("f", False)]),  # overlapping runs join
        ([[4, 99]], [("abcd", False), ("ef", True)]),  # clipped to the text
    ],
)
def test_segments_cover_text_exactly(highlights, expected):
    assert segments("abcdef", highlights) == expected


def test_segments_join_runs_split_only_by_white_space():
    assert segments("One. Two. Three.", [[0, 4], [5, 9]]) == [("One. Two.", True), (" Three.", False)]
    assert segments("One. Two.", [[0, 4], [6, 9]]) == [("One.", True), (" T", False), ("wo.", True)]


def test_api_filters_and_mode(client):
    data = client.get("/api/search?q=Lavrov&k=10&since=2024-01-01&until=2024-12-31&mode=dense").get_json()
    assert data["mode"] == "dense" and data["excluded_undated"] == 2
    assert {r["date"] for r in data["results"]} <= {"2024-01-23", "2024-01-24"}
    body = {"question": "Russia", "source": "001_197f8570244cbea7.txt", "k": 3}
    data = client.post("/api/search", json=body).get_json()
    assert {r["source"] for r in data["results"]} == {"001_197f8570244cbea7.txt"}
    assert client.get("/api/search?q=x&since=2024-99-01").status_code == 400
    assert client.get("/api/search?q=x&mode=magic").status_code == 400
    assert client.post("/api/search", json={"question": "x", "source": "nope.txt"}).status_code == 400


def test_page_filters_and_undated_notice(client):
    html = client.get("/?q=Lavrov&since=2024-01-01&until=2024-12-31&k=20").get_data(as_text=True)
    assert "2 documents without a date were left out" in html
    assert 'id="since" name="since" type="date" value="2024-01-01"' in html
    assert 'datetime="2024-01-2' in html
    assert 'datetime="2025-02-17"' not in html and "no date" not in html


def test_page_says_when_no_document_is_dated_in_range(client):
    html = client.get("/?q=Lavrov&since=2030-01-01").get_data(as_text=True)
    assert "No document is dated in that range." in html
    assert "<details class=\"filters\" open>" in html  # filters in use stay visible


def test_page_low_confidence_notice(client):
    html = client.get("/?q=zebra+quokka+platypus").get_data(as_text=True)
    assert "No close match" in html
    assert "No close match" not in client.get("/?q=The+Kursk+region+stands+apart").get_data(as_text=True)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000", "LOCALHOST"])
def test_loopback_hosts_are_answered(client, host):
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost:x", ""])
def test_other_hosts_get_a_json_400_on_every_route(client, host):
    for path in ("/healthz", "/api/search?q=treaty", "/", "/static/style.css"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400, path
        assert "does not answer for host" in response.get_json()["error"]


def test_allowed_hosts_add_deployment_names_and_subdomains(index_dir, embedder):
    app = create_app(searcher=Searcher(index_dir, embedder=embedder), test_config={
        "TESTING": True,
        "QA_ALLOWED_HOSTS": ("qa.example.org", ".corp.example"),
    })
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "qa.example.org:443"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "search.corp.example"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "example.org"}).status_code == 400


@pytest.fixture
def locked_client(index_dir, embedder):
    app = create_app(searcher=Searcher(index_dir, embedder=embedder), test_config={"TESTING": True, "QA_TOKEN": "s3cret"})
    return app.test_client()


def test_a_token_is_required_by_the_api_and_the_page(locked_client):
    import base64

    for path in ("/api/search?q=treaty", "/healthz", "/?q=treaty", "/"):
        response = locked_client.get(path)
        assert response.status_code == 401, path
        assert any(h.startswith("Basic") for h in response.headers.getlist("WWW-Authenticate"))
    wrong = locked_client.get("/api/search?q=treaty", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.get_json()["error"]
    bearer = locked_client.get("/api/search?q=treaty", headers={"Authorization": "Bearer s3cret"})
    assert bearer.status_code == 200
    basic = base64.b64encode(b"anyone:s3cret").decode()
    page = locked_client.get("/?q=treaty", headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and b"<mark>" in page.data


def test_a_running_server_says_when_the_documents_changed(index_dir, embedder, docs):
    app = create_app(searcher=Searcher(index_dir, embedder=embedder), test_config={"TESTING": True, "QA_DOCS": str(docs)})
    freshness = app.extensions["qa.freshness"]
    freshness.check()
    client = app.test_client()
    health = client.get("/healthz").get_json()
    assert health["stale"] is False and health["stale_reason"] is None
    assert b"out of date" not in client.get("/").data
    (docs / "new.txt").write_text("New\n\nA document added after the build.", encoding="utf-8")
    freshness.check()  # what the background thread does every QA_STALE_CHECK_EVERY seconds
    health = client.get("/healthz").get_json()
    assert health["stale"] is True and health["stale_reason"] == "the documents changed since the index was built"
    assert str(docs) not in json.dumps(health)  # where the server keeps its files is not the client's business
    assert b"The index is out of date." in client.get("/").data


def test_the_staleness_check_never_holds_up_a_request(index_dir, embedder, docs, monkeypatch):
    import qa.indexing

    checking = threading.Event()

    def slow_check(*args, **kwargs):
        checking.set()
        time.sleep(3)  # hashing a 2 GB file took 7.7 s inside a request
        return True

    monkeypatch.setattr(qa.indexing, "folder_changed", slow_check)
    app = create_app(searcher=Searcher(index_dir, embedder=embedder),
                     test_config={"TESTING": True, "QA_DOCS": str(docs), "QA_STALE_CHECK_EVERY": 0.01})
    assert checking.wait(5)
    client = app.test_client()
    began = time.monotonic()
    assert client.get("/healthz").status_code == 200 and client.get("/api/search?q=treaty").status_code == 200
    assert client.get("/?q=treaty").status_code == 200
    assert time.monotonic() - began < 1.0


def test_several_sources_and_a_folder_filter_the_answers(client, docs):
    picked = ["002_42f21bd48c4da039.txt", "004_027c9bdda43207c8.txt"]
    get = client.get("/api/search", query_string=[("q", "treaty Russia"), ("k", 10), *(("source", s) for s in picked)])
    assert get.status_code == 200 and {r["source"] for r in get.get_json()["results"]} <= set(picked)
    post = client.post("/api/search", json={"question": "treaty Russia", "k": 10, "source": picked}).get_json()
    assert post["results"] == get.get_json()["results"]
    assert client.get("/api/search?q=x&source=a.txt&source=nope.txt").status_code == 400
    nowhere = client.get("/api/search?q=treaty&folder=nowhere")
    assert nowhere.status_code == 400 and "under the folder 'nowhere'" in nowhere.get_json()["error"]
    html = client.get("/").get_data(as_text=True)
    assert '<select id="source" name="source" multiple' in html and 'value="002_42f21bd48c4da039.txt"' in html


def test_a_folder_filter_takes_the_folder_and_below_only(tmp_path, embedder):
    from qa.indexing import build

    docs = tmp_path / "docs"
    for folder in ("reports/2024", "reports/2024_old", "notes"):
        (docs / folder).mkdir(parents=True)
        (docs / folder / "a.txt").write_text(f"Title {folder}\n\nThe zebra census of {folder}.", encoding="utf-8")
    build(docs, tmp_path / "index", embedder)
    searcher = Searcher(tmp_path / "index", embedder=embedder)
    found = {r.passage.source for r in searcher.search("zebra census", k=10, folder="reports/2024/").results}
    assert found == {"reports/2024/a.txt"}  # not reports/2024_old: a folder, not a prefix of names
    found = {r.passage.source for r in searcher.search("zebra census", k=10, folder="reports").results}
    assert found == {"reports/2024/a.txt", "reports/2024_old/a.txt"}


def test_the_documents_view_lists_what_is_indexed_and_what_was_skipped(index_dir, embedder, docs):
    from qa.indexing import build

    (docs / "empty.txt").write_bytes(b"")
    build(docs, index_dir, embedder)
    client = create_app({"TESTING": True}, searcher=Searcher(index_dir, embedder=embedder)).test_client()
    data = client.get("/api/documents").get_json()
    assert [d["source"] for d in data["documents"]] == sorted(p.name for p in docs.glob("0*.txt"))
    first = data["documents"][0]
    assert set(first) == {"source", "title", "date", "url", "author", "format", "encoding", "chars", "pages", "passages"}
    assert first["passages"] > 0 and first["format"] == "text"
    assert data["skipped"] == [{"source": "empty.txt", "reason": "empty file"}]
    html = client.get("/documents").get_data(as_text=True)
    assert "empty.txt" in html and "empty file" in html and "5 documents indexed, 1 file skipped" in html
    assert client.get("/api/documents?folder=nowhere").get_json() == {
        "documents": [], "skipped": [], "total_documents": 0, "total_skipped": 0, "offset": 0, "limit": 100,
    }


def test_the_documents_are_listed_a_page_at_a_time(tmp_path, embedder):
    from qa.indexing import build

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(250):
        (docs / f"n{i:03d}.txt").write_text(f"Note {i}\n\nItem {i}.", encoding="utf-8")
    for i in range(120):
        (docs / f"e{i:03d}.txt").write_bytes(b"")
    build(docs, tmp_path / "index", embedder)
    client = create_app({"TESTING": True}, searcher=Searcher(tmp_path / "index", embedder=embedder)).test_client()
    first = client.get("/api/documents").get_json()
    assert len(first["documents"]) == 100 and first["total_documents"] == 250 and first["total_skipped"] == 120
    assert first["documents"][0]["source"] == "n000.txt" and len(first["skipped"]) == 100
    last = client.get("/api/documents?offset=200&limit=100").get_json()
    assert [d["source"] for d in last["documents"]] == [f"n{i:03d}.txt" for i in range(200, 250)]
    assert last["skipped"] == []
    assert client.get("/api/documents?limit=1001").status_code == 400
    assert client.get("/api/documents?offset=-1").status_code == 400
    html = client.get("/documents").get_data(as_text=True)
    assert "250 documents indexed, 120 files skipped" in html and html.count('<td class="count">') == 100
    assert 'rel="next" href="/documents?offset=100"' in html and 'rel="prev"' not in html
    html = client.get("/documents?offset=200").get_data(as_text=True)
    assert html.count('<td class="count">') == 50 and 'rel="prev" href="/documents?offset=100"' in html


@pytest.mark.parametrize("value", ["²", "①", "٣", "1e3", "-1"])
def test_offsets_that_are_not_ascii_whole_numbers_are_refused(client, value):
    for path in ("/api/document", "/document"):
        response = client.get(path, query_string={"source": "004_027c9bdda43207c8.txt", "start": value})
        assert response.status_code == 400, (path, value)
        response = client.get(path, query_string={"source": "004_027c9bdda43207c8.txt", "end": value})
        assert response.status_code == 400, (path, value)


def test_answers_are_not_cached_and_errors_do_not_show_server_paths(client, tmp_path):
    answer = client.get("/api/search?q=treaty")
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.get("/?q=treaty").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")
    empty = create_app({"TESTING": True, "QA_INDEX": str(tmp_path / "secret" / "place")}).test_client()
    for path in ("/api/search?q=x", "/healthz", "/?q=x"):
        response = empty.get(path)
        assert response.status_code == 503 and b"secret" not in response.data, path


def test_unknown_http_methods_are_one_metrics_label(index_dir, embedder):
    app = create_app({"TESTING": True, "QA_METRICS": True}, searcher=Searcher(index_dir, embedder=embedder))
    client = app.test_client()
    for n in range(50):
        client.open("/api/search", method=f"M{n}X")
    scrape = client.get("/metrics").get_data(as_text=True)
    methods = {line.split('method="')[1].split('"')[0] for line in scrape.splitlines() if 'method="' in line}
    assert methods <= {"GET", "other"} and "other" in methods


def test_metrics_are_off_by_default_and_for_this_machine_only(index_dir, embedder, client):
    assert client.get("/metrics").status_code == 404
    app = create_app({"TESTING": True, "QA_METRICS": True}, searcher=Searcher(index_dir, embedder=embedder))
    local = app.test_client()
    local.get("/api/search?q=treaty")
    scrape = local.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert scrape.status_code == 200 and b'qa_requests_total{method="GET",route="/api/search",status="200"} 1.0' in scrape.data
    assert local.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404


def test_the_source_list_gives_way_to_a_text_box_for_large_collections(client, monkeypatch):
    import qa.web.pages as pages

    assert '<select id="source"' in client.get("/").get_data(as_text=True)
    monkeypatch.setattr(pages, "MAX_PICKABLE", 3)  # the seeds are 5 documents
    html = client.get("/").get_data(as_text=True)
    assert '<select id="source"' not in html and '<input id="source" name="source" type="text"' in html


def test_the_page_and_the_api_check_the_mode_alike(client):
    assert client.get("/api/search?q=treaty&mode=semantic").status_code == 400
    page = client.get("/?q=treaty&mode=semantic")
    assert page.status_code == 400 and b"ode must be one of dense, lexical, hybrid, rerank" in page.data
    assert client.get("/?q=treaty&mode=lexical").status_code == 200


def test_while_the_first_index_is_built_the_server_answers_and_says_how_far_it_is(tmp_path, embedder):
    app = create_app({"TESTING": True}, searcher=Searcher(tmp_path / "none", embedder=embedder))
    app.extensions["qa.status"].update(building={"state": "building", "stage": "reading files", "done": 12,
                                                 "total": 53, "current": None})
    client = app.test_client()
    api = client.get("/api/search?q=Kursk")
    assert api.status_code == 503 and api.headers["Retry-After"]
    assert "being built (reading files: 12 of 53)" in api.get_json()["error"]
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["status"] == "building"
    assert health.get_json()["building"] == "reading files: 12 of 53" and health.headers["Retry-After"]
    page = client.get("/").get_data(as_text=True)
    assert "Building the index" in page and "reading files: 12 of 53" in page
    app.extensions["qa.status"].update(building={"state": "waiting", "by": "pid 4242"})
    assert "waiting for the build that pid 4242 is running" in client.get("/healthz").get_json()["building"]


def test_the_start_up_check_is_said_by_healthz_and_is_no_build_on_the_page(app, client):
    app.extensions["qa.status"].update(building={"state": "checking"})
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["building"] == "checking the index against the documents"
    assert "Building the index" not in client.get("/").get_data(as_text=True)
    app.extensions["qa.status"].update(building=None)
    assert "building" not in client.get("/healthz").get_json()
