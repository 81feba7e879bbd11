"""Work kept as a build goes, so a killed or failed build resumes where it stopped, on any CPU.

**Vectors.** A build writes what it has embedded to ``index/resume/<key>/`` at
least every ``KEEP_EVERY_S`` seconds, whatever the encoder's speed: a kill loses
at most that much embedding (and the call in flight, about ``STEP_S``). Counting
texts instead would tie the loss to the CPU: 2,048 passages were 7 s on one host
and a minute on another, where a killed build kept nothing. ``key`` names the
model, encoder and chunking: a build with other settings neither reads nor keeps
another key's slices. A text is found again by the digest of what determines its
vectors (its text and the sentence spans pooled from it), so a resumed build
gives the vectors an uninterrupted one would have given.

**Documents.** What the readers extracted (and the verdicts on files that cannot
be indexed) is appended to ``index/resume/documents.jsonl`` as files are read,
so a build killed while it embeds does not parse and OCR every file again.

Everything kept is input, not trusted state: a slice or a line that is damaged,
of another width, not finite, off the unit sphere, or whose arrays no longer
match the checksum written with them, is passed over with a warning and its
texts are embedded (or its file read) again. Slices are written to a temporary
name and renamed; the folder goes once the build is published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from qa.records import Document, Skipped

log = logging.getLogger(__name__)

#: At most this many seconds of embedding are lost when a build is killed: what is embedded is kept this often.
KEEP_EVERY_S = 5.0
#: Seconds one call to the encoder aims to take: progress moves, and slices are kept on time, on any CPU.
STEP_S = 1.0
#: Texts in the first call, before the encoder's rate is known, and the most in any call.
FIRST_STEP, MAX_STEP = 4, 4096
FOLDER = "resume"
DOCUMENTS = "documents.jsonl"
DIGEST_SIZE = 20
#: How far a kept vector's length may be from 1: float32 passages, float16 span vectors.
NORM_TOLERANCE = {np.dtype(np.float32): 1e-3, np.dtype(np.float16): 2e-2}

#: Vectors of one text: its own, and one per span pooled from it (None where none could be).
Embedded = tuple[np.ndarray, list[np.ndarray | None]]
#: Embeds texts given by position: their vectors, and each one's pooled span vectors.
Encode = Callable[[list[int]], tuple[np.ndarray, list[list[np.ndarray | None]]]]


def digest(text: str, spans: Sequence[tuple[int, int]] = ()) -> bytes:
    """What a text's vectors depend on, besides the model and settings the store is keyed by."""
    hashed = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE)
    hashed.update(json.dumps(list(spans)).encode("ascii"))
    return hashed.digest()


class ResumeStore:
    """Slices of embedded texts under ``index_dir/resume/<key>``, and the documents read, beside them."""

    def __init__(self, index_dir: Path, settings: dict):
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.root = index_dir / FOLDER
        self.folder = self.root / self.key
        self.dimension = int(settings["dimension"])
        self.keeping = True
        self._kept: Kept | None = None

    def load(self) -> Kept:
        """Return every text an earlier build kept under this key; slices kept under any other key are removed.

        Read once: the passages and then the sentences a build embeds both look here, and
        the slices this build writes in between hold only texts it has just embedded.
        """
        if self._kept is not None:
            return self._kept
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other.name not in (self.key, DOCUMENTS):
                    shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
        kept = Kept()
        for path in sorted(self.folder.glob("slice-*.npz")) if self.folder.is_dir() else []:
            try:
                kept.add(*read_slice(path, self.dimension))
            except Exception as exc:  # noqa: BLE001 - any damage at all: EOFError, BadZipFile, a bad header
                log.warning("passing over %s (%s): its texts are embedded again", path, _describe(exc))
                path.unlink(missing_ok=True)
        self._kept = kept
        return kept

    def save(
        self, digests: Sequence[bytes], vectors: np.ndarray, pooled: Sequence[Sequence[np.ndarray | None]]
    ) -> None:
        """Write one slice, whole or not at all; after one cannot be written, keep none (the build goes on)."""
        if not self.keeping or not len(digests):
            return
        arrays = _slice_arrays(digests, vectors, pooled)
        name = f"slice-{time.time_ns():020d}-{os.getpid()}"
        tmp = self.folder / f".{name}.npz"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                np.savez(out, **arrays, check=np.frombuffer(_checksum(arrays), np.uint8))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.folder / f"{name}.npz")
        except OSError as exc:
            # A full disk, most often: the build itself reports it when it writes, as it always has.
            self.keeping = False
            tmp.unlink(missing_ok=True)
            log.warning("cannot keep embedded slices in %s (%s): an interrupted build will embed them again",
                        self.folder, exc.strerror or exc)

    def clear(self) -> None:
        """Remove every slice and kept document: the build they were for is published."""
        shutil.rmtree(self.root, ignore_errors=True)


def clear(index_dir: Path) -> None:
    """Remove whatever an unfinished build kept in ``index_dir`` (``--rebuild`` starts from nothing)."""
    shutil.rmtree(index_dir / FOLDER, ignore_errors=True)


def _slice_arrays(digests, vectors: np.ndarray, pooled) -> dict[str, np.ndarray]:
    counts = np.array([len(p) for p in pooled], np.int32)
    flat = [v for p in pooled for v in p]
    present = np.array([v is not None for v in flat], bool)
    spans = np.zeros((len(flat), vectors.shape[1]), np.float16)
    for n, v in enumerate(flat):
        if v is not None:
            spans[n] = v
    return {
        "digests": np.frombuffer(b"".join(digests), np.uint8).reshape(-1, DIGEST_SIZE),
        "vectors": np.ascontiguousarray(vectors, np.float32), "counts": counts, "present": present, "spans": spans,
    }


def _checksum(arrays: dict[str, np.ndarray]) -> bytes:
    """A digest of a slice's arrays in a fixed order: rows moved, scaled or swapped no longer match it."""
    hashed = hashlib.blake2b(digest_size=16)
    for name in ("digests", "vectors", "counts", "present", "spans"):
        array = arrays[name]
        hashed.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        hashed.update(np.ascontiguousarray(array).tobytes())
    return hashed.digest()


def read_slice(path: Path, dimension: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return a slice's arrays, or raise ValueError saying what is wrong with it."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in ("digests", "vectors", "counts", "present", "spans")}
        check = data["check"].tobytes()
    digests, vectors, counts, present, spans = arrays.values()
    if check != _checksum(arrays):
        raise ValueError("its arrays do not match their checksum")
    if digests.dtype != np.uint8 or digests.ndim != 2 or digests.shape[1] != DIGEST_SIZE:
        raise ValueError("its digests are not digests")
    if vectors.dtype != np.float32 or vectors.shape != (len(digests), dimension):
        raise ValueError(f"its vectors are {vectors.dtype} {vectors.shape}, not float32 ({len(digests)}, {dimension})")
    if counts.shape != (len(digests),) or counts.dtype != np.int32 or (counts < 0).any():
        raise ValueError("its span counts do not agree")
    if present.dtype != bool or spans.dtype != np.float16 or spans.shape != (int(counts.sum()), dimension) \
            or present.shape != (len(spans),):
        raise ValueError("its span vectors do not agree")
    _check_unit(vectors, "vector")
    _check_unit(spans[present], "span vector")
    return digests, vectors, counts, present, spans


def _check_unit(rows: np.ndarray, what: str) -> None:
    if not np.isfinite(rows).all():
        raise ValueError(f"a {what} is not finite")
    norms = np.linalg.norm(rows.astype(np.float32), axis=1)
    if len(norms) and np.abs(norms - 1).max() > NORM_TOLERANCE[rows.dtype]:
        raise ValueError(f"a {what} is not of unit length ({norms[np.abs(norms - 1).argmax()]:.4g})")


class Kept:
    """The texts of the slices read, by digest: a dict entry per text, the vectors in each slice's arrays."""

    def __init__(self):
        self._where: dict[bytes, tuple[int, int]] = {}
        self._slices: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._where)

    def add(self, digests, vectors, counts, present, spans) -> None:
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._slices.append((vectors, starts, present, spans))
        at = len(self._slices) - 1
        self._where.update((d.tobytes(), (at, row)) for row, d in enumerate(digests))

    def get(self, digest: bytes) -> Embedded | None:
        found = self._where.get(digest)
        if found is None:
            return None
        vectors, starts, present, spans = self._slices[found[0]]
        row = found[1]
        a, b = starts[row], starts[row + 1]
        return vectors[row], [spans[i].astype(np.float32) if present[i] else None for i in range(a, b)]


def embed_resumably(
    digests: Sequence[bytes], encode: Encode, store: ResumeStore | None, progress=None, what: str = "passages",
    least: int = 1,
) -> Iterator[tuple[int, np.ndarray, list[np.ndarray | None]]]:
    """Yield (position, vector, span vectors) of every text, from ``store`` where kept, else embedded.

    Texts are embedded a few at a time, as many as the encoder does in about
    ``STEP_S`` (at least ``least``: a cluster wants enough to keep its workers
    busy), and kept in ``store`` at least every ``KEEP_EVERY_S`` seconds and when
    the loop ends, however it ends. ``progress`` (``qa.terminal.Progress``) is told
    after every call.
    """
    kept = store.load() if store is not None else Kept()
    todo = []
    for n, d in enumerate(digests):
        found = kept.get(d)
        if found is None:
            todo.append(n)
        else:
            yield n, found[0], found[1]
    if progress is not None:
        progress.start(f"embedding {what}", len(digests), done=len(digests) - len(todo), unit=what)
        if len(digests) > len(todo):
            progress.say(f"resuming: {len(digests) - len(todo):,} of {len(digests):,} {what} were embedded by an "
                         "earlier, unfinished build")
    pending = _Pending(store, digests)
    step, at = max(least, FIRST_STEP), 0
    try:
        while at < len(todo):
            part = todo[at : at + step]
            at += len(part)
            began = time.monotonic()
            vectors, pooled = encode(part)
            took = time.monotonic() - began
            pending.add(part, vectors, pooled)
            for n, vector, spans in zip(part, vectors, pooled):
                yield n, vector, spans
            if progress is not None:
                progress.advance(len(part))
            pending.keep_if_due()
            step = next_step(step, len(part), took, least)
    finally:
        pending.keep()
        if progress is not None:
            progress.finish()


def next_step(step: int, done: int, took: float, least: int = 1) -> int:
    """Return how many texts the next call should embed: about ``STEP_S`` worth, moving at most 2x a call."""
    if took <= 0:
        return min(MAX_STEP, step * 2)
    wanted = done / took * STEP_S
    return int(max(least, 1, min(MAX_STEP, step * 2, max(step / 2, wanted))))


class _Pending:
    """Vectors embedded since the last slice was written, kept when ``KEEP_EVERY_S`` has passed."""

    def __init__(self, store: ResumeStore | None, digests: Sequence[bytes]):
        self.store, self.digests = store, digests
        self.positions: list[int] = []
        self.vectors: list[np.ndarray] = []
        self.pooled: list[list[np.ndarray | None]] = []
        self.since = time.monotonic()

    def add(self, positions: list[int], vectors: np.ndarray, pooled) -> None:
        self.positions.extend(positions)
        self.vectors.append(np.asarray(vectors, np.float32))
        self.pooled.extend(pooled)

    def keep_if_due(self) -> None:
        if time.monotonic() - self.since >= KEEP_EVERY_S:
            self.keep()

    def keep(self) -> None:
        if self.store is not None and self.positions:
            self.store.save([self.digests[n] for n in self.positions], np.concatenate(self.vectors), self.pooled)
        self.positions, self.vectors, self.pooled = [], [], []
        self.since = time.monotonic()


class KeptDocuments:
    """What the readers made of each file (a document, or why it was skipped), appended as files are read.

    One JSON line per file, each with a checksum of itself: a line cut by a kill, or
    damaged since, fails its check and that file is read again. Time-outs, crashes
    and other transient failures are not kept: the next build tries the file again.
    """

    def __init__(self, index_dir: Path):
        self.path = index_dir / FOLDER / DOCUMENTS
        self._out = None
        self._since = time.monotonic()

    def load(self) -> dict[tuple[str, str], Document | Skipped]:
        """Return what an earlier, unfinished build read, by (source, sha256)."""
        found: dict[tuple[str, str], Document | Skipped] = {}
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError:
            return found
        bad = 0
        for line in lines:
            try:
                record = _record_of(line)
            except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                bad += 1
                continue
            found[(record.source, record.sha256)] = record
        if bad:
            log.warning("passing over %d damaged line(s) of %s: those files are read again", bad, self.path)
        return found

    def add(self, record: Document | Skipped) -> None:
        """Keep one file's result; written through to disk at least every ``KEEP_EVERY_S`` seconds."""
        if record.sha256 is None or getattr(record, "transient", False):
            return
        try:
            if self._out is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._out = open(self.path, "ab")
            self._out.write(_line_of(record))
            if time.monotonic() - self._since >= KEEP_EVERY_S:
                self.flush()
        except OSError as exc:
            log.warning("cannot keep what was read in %s (%s)", self.path, exc.strerror or exc)
            self.close()
            self._out = False  # type: ignore[assignment]  - stop trying; the build goes on

    def flush(self) -> None:
        if self._out:
            self._out.flush()
            os.fsync(self._out.fileno())
        self._since = time.monotonic()

    def close(self) -> None:
        if self._out:
            try:
                self.flush()
            except OSError:
                pass
            self._out.close()
        self._out = None


def _line_of(record: Document | Skipped) -> bytes:
    kind = "document" if isinstance(record, Document) else "skipped"
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "transient"}
    body = json.dumps({"kind": kind, **fields}, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    check = hashlib.blake2b(body.encode("ascii"), digest_size=12).hexdigest()
    return f"{check} {body}\n".encode("ascii")


def _record_of(line: bytes) -> Document | Skipped:
    """Read one kept line back, checking its checksum and every field's type; ValueError when anything is off."""
    check, _, body = line.decode("ascii").partition(" ")
    if hashlib.blake2b(body.encode("ascii"), digest_size=12).hexdigest() != check:
        raise ValueError("checksum")
    values = json.loads(body)
    kind = values.pop("kind")
    cls = Document if kind == "document" else Skipped if kind == "skipped" else None
    if cls is None:
        raise ValueError(kind)
    sha = values.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ValueError("sha256")
    known = {f.name: f for f in dataclasses.fields(cls)}
    if set(values) - set(known):
        raise ValueError("unknown fields")
    for name, value in list(values.items()):
        default = known[name].default
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, (int, str)) and not isinstance(v, bool)
                                                      for v in value):
                raise ValueError(name)
            values[name] = tuple(value)
        elif not (value is None or isinstance(value, (str, int)) and not isinstance(value, bool)):
            raise ValueError(name)
    record = cls(**values)
    if isinstance(record, Document):
        _check_document(record)
    return record


def _check_document(document: Document) -> None:
    """Refuse a kept document whose offsets do not fit its text."""
    size = len(document.text)
    if not isinstance(document.text, str) or not isinstance(document.body_start, int) \
            or not 0 <= document.body_start <= size:
        raise ValueError("body_start")
    pages = document.pages
    if any(not isinstance(p, int) or not 0 <= p <= size for p in pages) or list(pages) != sorted(pages):
        raise ValueError("pages")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
