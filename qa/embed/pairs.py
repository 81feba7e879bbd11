"""Int8 weights no CPU can saturate: each pair of products fits AVX2's 16-bit sums, so every x86 CPU agrees.

onnxruntime multiplies an int8 export's uint8 activations by its int8 weights
with VNNI's exact dot product where the CPU has it. Elsewhere (AVX2 alone, most
laptops and many VMs) it uses ``vpmaddubsw``: the products of weights ``2i`` and
``2i + 1`` along the inner dimension are added into a signed 16-bit sum that
saturates. An activation reaches 255, so a pair can saturate only if its weights
of one sign add up to more than 128 in magnitude (255 x 128 = 32,640 fits in
32,767; 255 x 129 does not).

``bound_pairs`` re-quantizes each quantized MatMul's weights from the fp32
graph they were made from, choosing each output channel's scale so that the
largest of its weights' magnitudes and of its pairs' same-signed sums becomes
127. Rounding adds at most one to a pair, so none passes 128 and the integer
products are exact on both kinds of CPU. A channel's steps grow only as far as
its largest same-signed pair needs, never past twice the usual 8-bit step
(which 7-bit weights, ``reduce_range``, take everywhere): for all-mpnet-base-v2,
by 1.03-1.29 on average over a matrix's channels. Measured in
docs/speed-and-scale.md ("The int8 export on any CPU").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: What the same-signed weights of one pair may add up to: 255 x 128 fits a signed 16-bit sum.
PAIR_LIMIT = 128
#: What a single weight, and the largest same-signed pair sum, are scaled to (a margin of one for rounding).
TARGET = PAIR_LIMIT - 1
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


def quantize(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return int8 weights and one scale per output channel (column) of a ``[K, N]`` fp32 matrix, symmetric,
    with no pair's same-signed sum past ``PAIR_LIMIT``."""
    positive, negative = pair_sums(weights)
    largest = np.maximum(np.abs(weights).max(axis=0), np.maximum(positive.max(axis=0), negative.max(axis=0)))
    scale = np.where(largest > 0, largest / TARGET, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(weights / scale), -TARGET, TARGET).astype(np.int8)
    worst = fitting(quantized)
    if worst > PAIR_LIMIT:  # rounding adds at most one to a pair: a bug, never a property of the weights
        raise AssertionError(f"a pair of weights sums to {worst} in magnitude after quantizing")
    return quantized, scale


def fitting(quantized: np.ndarray) -> int:
    """The largest same-signed pair sum of int8 weights: at most ``PAIR_LIMIT`` means AVX2 cannot saturate."""
    positive, negative = pair_sums(quantized)
    return int(max(positive.max(initial=0), negative.max(initial=0)))


def bound_pairs(source: Path, quantized: Path) -> int:
    """Re-quantize, in place, the weights of every MatMulInteger of the ``quantized`` ONNX file (made by
    onnxruntime's dynamic quantization from ``source``) so that no pair can saturate; return how many."""
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
        ints, scale = quantize(weights)
        tensors[name].CopyFrom(numpy_helper.from_array(ints, name))
        tensors[base + "_scale"].CopyFrom(numpy_helper.from_array(scale.astype(old_scale.dtype), base + "_scale"))
        done += 1
    onnx.save(model, str(quantized))
    return done
