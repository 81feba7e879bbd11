"""A sentence-transformers model loaded from a local folder, run by torch on the CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.embed.pooling import pool_spans
from qa.errors import ModelUnavailable

#: Passages whose token embeddings are held at once when pooling sentence vectors.
SPAN_SLICE = 256


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder on the CPU."""

    def __init__(self, path: Path, name: str):
        # No hub at run time: fail fast instead of trying the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the "Loading weights" bar is noise in a CLI

            self.model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:
            raise ModelUnavailable(f"cannot load the model at {path}: {exc}") from exc
        self.name = name
        self.path = path
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Return the number of word pieces the model sees for ``text``, specials included."""
        return len(self.model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Return each text's vector and, from the same forward pass, a vector per span of it.

        The text's vector is the model's usual one (mean of its token
        embeddings, normalised). A span's vector is the normalised mean of the
        token embeddings inside it ("late chunking", Günther et al. 2024): it
        sees its context and costs no extra pass. None where no token falls in
        the span (beyond the model's 256-piece window).
        """
        texts = list(texts)
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        pooled: list[list[np.ndarray | None]] = []
        bar = _progress(len(texts)) if progress else None
        # Token embeddings take ~1.4 KB per word piece: pool a slice at a time so memory
        # stays flat however many passages a build embeds.
        for first in range(0, len(texts), SPAN_SLICE):
            part = texts[first : first + SPAN_SLICE]
            tokens = self.model.encode(
                part, batch_size=batch_size, output_value="token_embeddings", convert_to_numpy=False
            )
            offsets = self.model.tokenizer(
                part, return_offsets_mapping=True, truncation=True, max_length=self.max_tokens
            )["offset_mapping"]
            for i, (matrix, where) in enumerate(zip(tokens, offsets), first):
                vectors[i], row = pool_spans(matrix.float().cpu().numpy(), where, spans[i])
                pooled.append(row)
            del tokens
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
        return vectors, pooled


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="passage", desc="Embedding")

