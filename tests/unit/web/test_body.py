"""web/body.py: bodies read whole before the app runs, refused when late, malformed or too many at once."""

from __future__ import annotations

import io
import json

from qa.web.body import BodyReader


def app(environ, start_response):
    """Echo the body the app was handed."""
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [data]


def call(reader, body: bytes | None = None, stream=None, chunked: bool = False):
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": stream or io.BytesIO(body or b"")}
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body or b""))
    status = []
    out = b"".join(reader(environ, lambda s, headers: status.append(s)))
    return status[0], out


class Failing(io.RawIOBase):
    """A body stream that fails as gunicorn's does: a late body, or chunking that is not HTTP."""

    def __init__(self, error):
        self.error = error

    def read(self, n=-1):
        raise self.error


def test_the_app_gets_the_whole_body():
    assert call(BodyReader(app, 100), b'{"question": "x"}') == ("200 OK", b'{"question": "x"}')


def test_a_chunked_body_is_read_to_one_byte_past_the_limit():
    status, out = call(BodyReader(app, 10), stream=io.BytesIO(b"x" * 50), chunked=True)
    assert status == "200 OK" and out == b"x" * 11  # the app sees it is over the limit, and says 413


def test_a_body_that_does_not_arrive_in_time_is_a_408():
    status, out = call(BodyReader(app, 100), stream=Failing(TimeoutError("timed out")), chunked=True)
    assert status.startswith("408") and "did not arrive" in json.loads(out)["error"]


def test_chunking_that_is_not_http_is_a_400_not_a_500():
    from gunicorn.http.errors import InvalidChunkSize

    status, out = call(BodyReader(app, 100), stream=Failing(InvalidChunkSize(b"zz")), chunked=True)
    assert status.startswith("400") and "not valid HTTP" in json.loads(out)["error"]


def test_past_the_bound_on_waiting_bodies_a_request_is_refused_at_once():
    reader = BodyReader(app, 100, max_waiting=2)
    reader.waiting = 2  # two connections are still sending theirs
    status, out = call(reader, b"{}")
    assert status.startswith("503") and "too many" in json.loads(out)["error"]
    reader.waiting = 1
    assert call(reader, b"{}")[0] == "200 OK" and reader.waiting == 1
