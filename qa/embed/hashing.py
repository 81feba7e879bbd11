"""``hashing``: a deterministic bag-of-words embedder that needs no weights, for tests and for trying qa."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Sequence

import numpy as np

from qa.embed.base import HASHING, HASHING_DIMENSION


_TOKEN = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 18)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


class HashingEmbedder:
    """Deterministic fake: lower-cased words hashed into signed buckets, then normalised.

    Texts that share words get similar vectors, so retrieval tests behave
    sensibly, with no weights and in microseconds.
    """

    max_tokens = 10**9

    def __init__(self, dimension: int = HASHING_DIMENSION):
        if dimension < 8:
            raise ValueError("hashing embedder needs a dimension of at least 8")
        self.dimension = dimension
        self.name = f"{HASHING}:{dimension}"

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            values = np.fromiter((_token_hash(t) for t in _TOKEN.findall(text.lower())), dtype=np.uint64)
            signs = np.where(values >> np.uint64(63), 1.0, -1.0).astype(np.float32)
            np.add.at(out[row], (values % np.uint64(self.dimension)).astype(np.intp), signs)
            if not out[row].any():
                # No word, or words that cancel: still a unit vector, as a real model's always is.
                out[row, _token_hash(text) % self.dimension] = 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
