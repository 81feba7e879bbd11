"""Int8 weights whose pairs of products cannot saturate AVX2's 16-bit sums (qa/embed/pairs.py).

The kernels themselves are tested on an emulated AVX2 CPU in test_other_cpus.py."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embed.pairs import PAIR_LIMIT, TARGET, bound_pairs, fitting, pair_sums, quantize


def weights_with_outliers(seed: int = 0, rows: int = 64, columns: int = 12) -> np.ndarray:
    """Gaussian weights, and in some columns two neighbouring rows of one sign as large as the column gets."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.02, (rows, columns)).astype(np.float32)
    weights[10, 0] = weights[11, 0] = 0.2        # a pair (10, 11) of large positive weights
    weights[20, 1] = weights[21, 1] = -0.2       # and of large negative ones
    weights[31, 2] = weights[32, 2] = 0.2        # large neighbours in two pairs (30, 31) and (32, 33): no risk
    weights[40, 3], weights[41, 3] = 0.2, -0.2   # one pair, opposite signs: no risk
    return weights


def plain_int8(weights: np.ndarray) -> np.ndarray:
    """onnxruntime's symmetric per-column 8-bit quantization."""
    return np.rint(weights / (np.abs(weights).max(axis=0) / 127)).astype(np.int8)


def test_pairs_are_rows_2i_and_2i_plus_1_and_an_odd_last_row_pairs_with_zero():
    positive, negative = pair_sums(np.array([[1, -2], [3, 4], [-5, 6]], np.int8))
    assert positive.tolist() == [[4, 4], [0, 6]]
    assert negative.tolist() == [[0, 2], [5, 0]]


def test_plain_8_bit_weights_can_saturate_and_bounded_ones_cannot():
    weights = weights_with_outliers()
    assert fitting(plain_int8(weights)) > PAIR_LIMIT  # 127 + 127: 255 x 254 overflows 16 bits
    ints, scale = quantize(weights)
    assert fitting(ints) <= PAIR_LIMIT
    assert np.abs(ints).max() <= TARGET


def test_a_channel_s_scale_grows_only_as_far_as_its_largest_same_signed_pair_needs():
    weights = weights_with_outliers()
    ints, scale = quantize(weights)
    usual = np.abs(weights).max(axis=0) / 127
    positive, negative = pair_sums(weights)
    np.testing.assert_allclose(scale, np.maximum(positive.max(axis=0), negative.max(axis=0)) / TARGET, rtol=1e-6)
    assert np.all(scale[[0, 1]] > usual[[0, 1]] * 1.9)  # 0.2 + 0.2 in one pair: about half the steps
    # Large weights of one sign in different pairs, or of opposite signs in one pair, cost (nearly) nothing.
    assert np.all(scale[[2, 3]] < usual[[2, 3]] * 1.2)
    assert np.all(scale <= usual * 2 + 1e-9)  # never coarser than 7-bit weights (reduce_range)
    # Every weight is within half a step of its own channel's scale.
    assert np.all(np.abs(ints * scale - weights) <= scale / 2 + 1e-7)


def test_a_column_of_zeros_keeps_a_usable_scale():
    ints, scale = quantize(np.zeros((4, 2), np.float32))
    assert not ints.any() and np.all(scale == 1.0)


def test_bound_pairs_rewrites_an_onnxruntime_quantization_and_stays_close_to_fp32(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = weights_with_outliers(rows=64, columns=12)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 12])],
        initializer=[numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx.save(model, str(source))
    quantize_dynamic(str(source), str(target), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8)
    before = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(target)).graph.initializer}
    assert fitting(before["w_quantized"]) > PAIR_LIMIT  # what onnxruntime makes can saturate

    assert bound_pairs(source, target) == 1
    after = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(target)).graph.initializer}
    assert fitting(after["w_quantized"]) <= PAIR_LIMIT
    assert after["w_scale"].dtype == before["w_scale"].dtype and after["w_scale"].shape == before["w_scale"].shape
    x = np.random.default_rng(1).normal(0, 1, (8, 64)).astype(np.float32)
    got = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    exact = x @ weights
    assert np.abs(got - exact).max() < 0.05 * np.abs(exact).max()


def test_bound_pairs_refuses_weights_it_cannot_trace_to_fp32(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = weights_with_outliers()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 12])],
        initializer=[numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx.save(model, str(source))
    quantize_dynamic(str(source), str(target), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8)
    model.graph.initializer[0].name = "renamed"  # the fp32 graph no longer holds the quantized weights' source
    onnx.save(model, str(source))
    written = target.read_bytes()
    with pytest.raises(ValueError, match="no fp32 weights"):
        bound_pairs(source, target)
    assert target.read_bytes() == written  # nothing half-rewritten
