"""Smoothing before int8: move each activation channel's outliers into the weights that read it.

Dynamic quantization gives a whole activation tensor one 8-bit scale. A
transformer's activations have a few channels far larger than the rest, so
that scale is coarse for every other channel, worst on short inputs (the
question "?" kept cosine 0.98 to fp32 with MiniLM, 0.96 with MPNet). SmoothQuant
(Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training Quantization
for Large Language Models", ICML 2023) divides input channel j of each weight
matrix's activation by s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) and
multiplies row j of the weight by it: the product is unchanged in exact
arithmetic, and both factors quantize well. Here the division is a ``Mul``
inserted before each ``MatMul`` with a constant weight (a post-LayerNorm model's
normalised output also feeds the residual, so it cannot be folded into the
LayerNorm), and max|X_j| is read from the fp32 model on
``qa.embed.calibration.CALIBRATION``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

#: Limits on a channel's factor: a channel that never fires must not get a weight row of 1e30.
SCALE_RANGE = (1e-4, 1e4)


def smooth(source: Path, target: Path, run_texts, texts: Sequence[str], alpha: float) -> int:
    """Write ``source`` (an fp32 ONNX model) smoothed to ``target``; return how many MatMuls were smoothed.

    ``run_texts(session, texts)`` runs an onnxruntime session on each text alone and
    yields its outputs (qa/embed/export.py gives the tokenizer's way).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    weights = {w.name: w for w in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    peaks = _activation_peaks(model, sorted({n.input[0] for n in matmuls}), run_texts, texts)
    for node in matmuls:
        weight = numpy_helper.to_array(weights[node.input[1]])  # (in, out)
        scale = peaks[node.input[0]] ** alpha / np.maximum(np.abs(weight).max(axis=1), 1e-8) ** (1 - alpha)
        scale = np.clip(scale, *SCALE_RANGE).astype(np.float32)
        weights[node.input[1]].CopyFrom(numpy_helper.from_array((weight * scale[:, None]).astype(np.float32),
                                                                node.input[1]))
        inverse = f"{node.name}/smooth_inverse"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
        smoothed = f"{node.name}/smoothed_input"
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position, helper.make_node("Mul", [node.input[0], inverse], [smoothed],
                                                           name=f"{node.name}/smooth"))
        node.input[0] = smoothed
    onnx.save(model, str(target))
    return len(matmuls)


def _activation_peaks(model, tensors: list[str], run_texts, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Return each tensor's largest absolute value per channel (last axis) over ``texts``."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    peaks: dict[str, np.ndarray] = {}
    for outputs in run_texts(session, texts):
        for name, value in zip(names, outputs):
            if name in tensors:
                peak = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
                peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks
