"""Int8 weights no CPU can saturate: each pair of products fits AVX2's 16-bit sums, so every x86 CPU agrees.

onnxruntime multiplies an int8 export's uint8 activations by its int8 weights
with VNNI's exact dot product where the CPU has it. Elsewhere (AVX2 alone, most
laptops and many VMs) it uses ``vpmaddubsw``: the products of weights ``2i`` and
``2i + 1`` along the inner dimension are added into a signed 16-bit sum that
saturates. An activation reaches 255, so a pair can saturate only if its weights
of one sign add up to more than 128 in magnitude (255 x 128 = 32,640 fits in
32,767; 255 x 129 does not).

``bound_pairs`` re-quantizes each quantized MatMul's weights from the fp32
graph they were made from so that no pair passes 128. For each output channel it
tries ``STEPS`` scales from the usual 8-bit one (largest weight at 127) to the
one at which no pair can pass (the largest same-signed pair sum at 127, at most
twice as coarse: 7-bit weights, ``reduce_range``, take that everywhere); at each,
the pairs that still pass have their same-signed weights scaled down to fit,
and the channel keeps the scale whose weights are nearest the fp32 ones
(least squared error). Coarser steps everywhere cost a short text like "Why?"
0.02 in cosine to fp32; clipping the few pairs at the usual scale cost the
largest weights; the least-error mix of the two costs neither. Measured in
docs/speed-and-scale.md ("The int8 export on any CPU").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: What the same-signed weights of one pair may add up to: 255 x 128 fits a signed 16-bit sum.
PAIR_LIMIT = 128
#: The largest magnitude of one weight (symmetric int8), and what the safe scale brings a pair's sum to.
TARGET = PAIR_LIMIT - 1
#: Scales tried a channel, from the usual 8-bit one to the safe one.
STEPS = 16
_QUANTIZED = "_quantized"


def pair_sums(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each pair of rows (``2i``, ``2i + 1``; an odd last row pairs with zero) of a ``[K, N]``
    matrix, the sum of its positive entries and the sum of its negative entries' magnitudes, each ``[K/2, N]``."""
    weights = np.asarray(weights)
    if weights.shape[0] % 2:
        weights = np.vstack([weights, np.zeros((1, weights.shape[1]), weights.dtype)])
    wide = weights.astype(np.float64)
    positive, negative = np.clip(wide, 0, None), np.clip(-wide, 0, None)
    return positive[0::2] + positive[1::2], negative[0::2] + negative[1::2]


def quantize(weights: np.ndarray, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return int8 weights and one scale per output channel (column) of a ``[K, N]`` fp32 matrix, symmetric,
    with no pair's same-signed sum past ``PAIR_LIMIT``: of ``steps`` scales a column, the least squared error."""
    weights = np.asarray(weights, dtype=np.float32)
    positive, negative = pair_sums(weights)
    largest = np.abs(weights).max(axis=0)
    usual = largest / TARGET
    safe = np.maximum(largest, np.maximum(positive.max(axis=0), negative.max(axis=0))) / TARGET
    best = error = scale = None
    for share in np.linspace(0.0, 1.0, steps or STEPS):
        trial = np.where(safe > 0, usual + (safe - usual) * share, 1.0).astype(np.float32)
        ints = fit(np.clip(np.rint(weights / trial), -TARGET, TARGET))
        wrong = ((ints * trial - weights) ** 2).sum(axis=0)
        if best is None:
            best, error, scale = ints, wrong, trial
            continue
        better = wrong < error
        best[:, better], error, scale = ints[:, better], np.where(better, wrong, error), np.where(better, trial, scale)
    quantized = best.astype(np.int8)
    worst = fitting(quantized)
    if worst > PAIR_LIMIT:  # fit() holds every pair to the limit: a bug, never a property of the weights
        raise AssertionError(f"a pair of weights sums to {worst} in magnitude after quantizing")
    return quantized, scale.astype(np.float32)


def fit(ints: np.ndarray) -> np.ndarray:
    """Scale down, toward zero, the same-signed weights of every pair (rows ``2i``, ``2i + 1``) whose sum passes
    ``PAIR_LIMIT``, so that it is at most the limit; other weights stay as they are."""
    rows = ints.shape[0]
    padded = np.vstack([ints, np.zeros((1, ints.shape[1]), ints.dtype)]) if rows % 2 else ints.copy()
    first, second = padded[0::2], padded[1::2]
    for sign in (1.0, -1.0):
        a, b = np.clip(sign * first, 0, None), np.clip(sign * second, 0, None)
        total = a + b
        over = total > PAIR_LIMIT
        shrink = np.where(over, PAIR_LIMIT / np.maximum(total, 1), 1.0)
        first = np.where(over & (a > 0), sign * np.floor(a * shrink), first)
        second = np.where(over & (b > 0), sign * np.floor(b * shrink), second)
    padded[0::2], padded[1::2] = first, second
    return padded[:rows]


def fitting(quantized: np.ndarray) -> int:
    """The largest same-signed pair sum of int8 weights: at most ``PAIR_LIMIT`` means AVX2 cannot saturate."""
    positive, negative = pair_sums(quantized)
    return int(max(positive.max(initial=0), negative.max(initial=0)))


def bound_pairs(source: Path, quantized: Path, steps: int | None = None) -> int:
    """Re-quantize, in place, the weights of every MatMulInteger of the ``quantized`` ONNX file (made by
    onnxruntime's dynamic quantization from ``source``) so that no pair can saturate, trying ``steps`` scales a
    channel; return how many."""
    import onnx
    from onnx import numpy_helper

    originals = {t.name: t for t in onnx.load(str(source)).graph.initializer}
    model = onnx.load(str(quantized))
    tensors = {t.name: t for t in model.graph.initializer}
    done = 0
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in tensors:
            continue
        name = node.input[1]
        if not name.endswith(_QUANTIZED):
            raise ValueError(f"{node.name}: weights {name!r} are not named as onnxruntime's quantizer names them")
        base = name[: -len(_QUANTIZED)]
        zero_point = tensors.get(base + "_zero_point")
        if base not in originals or base + "_scale" not in tensors or zero_point is None:
            raise ValueError(f"{node.name}: no fp32 weights, scale or zero point for {name!r}")
        weights = numpy_helper.to_array(originals[base]).astype(np.float32)
        old_scale = numpy_helper.to_array(tensors[base + "_scale"])
        if weights.ndim != 2 or old_scale.shape != (weights.shape[1],) or numpy_helper.to_array(zero_point).any():
            raise ValueError(f"{node.name}: expected symmetric per-column weights, got {name!r} {weights.shape}")
        ints, scale = quantize(weights, steps)
        tensors[name].CopyFrom(numpy_helper.from_array(ints, name))
        tensors[base + "_scale"].CopyFrom(numpy_helper.from_array(scale.astype(old_scale.dtype), base + "_scale"))
        done += 1
    onnx.save(model, str(quantized))
    return done
