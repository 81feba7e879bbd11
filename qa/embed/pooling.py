"""Late chunking: a text's vector and its spans' vectors, pooled from one forward pass's token embeddings.

Shared by the torch model (qa/embed/sbert.py) and its onnxruntime export (qa/embed/onnx.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pool_spans(
    tokens: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], shift: int = 0
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Return the text's vector and one vector per span, from its token embeddings.

    ``tokens`` is (pieces, dimension), ``offsets`` each piece's (start, end) in the
    text (specials have empty ones), moved by ``shift`` characters. The text's vector
    is the normalised mean of all pieces; a span's, the normalised mean of the pieces
    inside it ("late chunking", Günther et al. 2024), or None where none falls in it
    (past the model's window).
    """
    starts = np.array([a for a, _ in offsets]) + shift
    ends = np.array([b for _, b in offsets]) + shift
    real = ends > starts
    pooled = []
    for a, b in spans:
        inside = real & (starts >= a) & (ends <= b)
        pooled.append(unit(tokens[inside].mean(axis=0)) if inside.any() else None)
    return unit(tokens.mean(axis=0)), pooled


def unit(vector: np.ndarray) -> np.ndarray:
    """Return ``vector`` scaled to length 1 (a zero vector as it is), as float32."""
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)
