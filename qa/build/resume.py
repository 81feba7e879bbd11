"""Embedded texts kept as a build goes, so a killed or failed build resumes where it stopped.

A build embeds its new texts in slices of ``SLICE`` and writes each slice's
vectors to ``index/resume/<key>/`` before it embeds the next. ``key`` names the
model, encoder and chunking: a build with other settings neither reads nor
keeps another key's slices. A text is found again by the digest of what
determines its vectors (its text and the sentence spans pooled from it), so a
resumed build gives the vectors an uninterrupted one would have given. The
folder goes once the build is published.

Every slice is written to a temporary name and renamed, so a kill leaves whole
slices only; one that cannot be read is passed over (its texts are embedded again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Texts embedded between two slices written: at the int8 encoder's ~150 passages/s
#: here, a kill loses under 15 seconds of embedding.
SLICE = 2048
FOLDER = "resume"
DIGEST_SIZE = 20

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
    """Slices of embedded texts under ``index_dir/resume/<key>``."""

    def __init__(self, index_dir: Path, settings: dict):
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.root = index_dir / FOLDER
        self.folder = self.root / self.key
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
                if other.name != self.key:
                    shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink(missing_ok=True)
        kept = Kept()
        for path in sorted(self.folder.glob("slice-*.npz")) if self.folder.is_dir() else []:
            try:
                kept.add(*_read_slice(path))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("passing over %s, which cannot be read (%s): its texts are embedded again", path, exc)
        self._kept = kept
        return kept

    def save(
        self, digests: Sequence[bytes], vectors: np.ndarray, pooled: Sequence[Sequence[np.ndarray | None]]
    ) -> None:
        """Write one slice, whole or not at all; after one cannot be written, keep none (the build goes on)."""
        if not self.keeping:
            return
        counts = np.array([len(p) for p in pooled], np.int32)
        flat = [v for p in pooled for v in p]
        present = np.array([v is not None for v in flat], bool)
        spans = np.zeros((len(flat), vectors.shape[1]), np.float16)
        for n, v in enumerate(flat):
            if v is not None:
                spans[n] = v
        name = f"slice-{time.time_ns():020d}-{os.getpid()}"
        tmp = self.folder / f".{name}.npz"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                np.savez(out, digests=np.frombuffer(b"".join(digests), np.uint8).reshape(-1, DIGEST_SIZE),
                         vectors=vectors.astype(np.float32), counts=counts, present=present, spans=spans)
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
        """Remove every slice: the build they were for is published."""
        shutil.rmtree(self.root, ignore_errors=True)


def _read_slice(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        digests, vectors, counts = data["digests"], data["vectors"], data["counts"]
        present, spans = data["present"], data["spans"]
    agree = digests.ndim == 2 and digests.shape[1] == DIGEST_SIZE and len(digests) == len(vectors) == len(counts)
    if not agree or len(present) != len(spans) or counts.sum() != len(spans):
        raise ValueError("its arrays do not agree")
    return digests, vectors, counts, present, spans


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
    digests: Sequence[bytes], encode: Encode, store: ResumeStore | None, progress: bool, what: str = "passages",
) -> Iterator[tuple[int, np.ndarray, list[np.ndarray | None]]]:
    """Yield (position, vector, span vectors) of every text, from ``store`` where kept, else embedded
    in slices of ``SLICE`` that are kept as they are made."""
    kept = store.load() if store is not None else Kept()
    todo = []
    for n, d in enumerate(digests):
        found = kept.get(d)
        if found is None:
            todo.append(n)
        else:
            yield n, found[0], found[1]
    bar = Progress(len(digests), len(digests) - len(todo), what) if progress else None
    for start in range(0, len(todo), SLICE):
        part = todo[start : start + SLICE]
        vectors, pooled = encode(part)
        if store is not None:
            store.save([digests[n] for n in part], vectors, pooled)
        for n, vector, spans in zip(part, vectors, pooled):
            yield n, vector, spans
        if bar is not None:
            bar.advance(len(part))
    if bar is not None:
        bar.close()


class Progress:
    """Texts embedded of the total, texts per second and the time left, on standard error."""

    def __init__(self, total: int, done: int, what: str):
        from tqdm import tqdm  # comes with sentence-transformers

        # tqdm's rate counts what this run embedded, not what it resumed with.
        self._bar = tqdm(total=total, initial=done, unit=what.rstrip("s"), desc=f"Embedding {what}",
                         smoothing=0.05)
        if done:
            self._bar.write(f"resuming: {done:,} of {total:,} {what} were embedded by an earlier, unfinished build")

    def advance(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
