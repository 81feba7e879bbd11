"""Int8 weights whose pairs of products cannot saturate AVX2's 16-bit sums (qa/embed/pairs.py).

The kernels themselves are tested on an emulated AVX2 CPU in test_other_cpus.py."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embed.pairs import PAIR_LIMIT, TARGET, bound_pairs, fit, fitting, pair_sums, quantize


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


def test_each_channel_keeps_the_least_error_of_its_scales_all_of_which_fit():
    weights = weights_with_outliers()
    ints, scale = quantize(weights)
    usual = np.abs(weights).max(axis=0) / TARGET
    positive, negative = pair_sums(weights)
    safe = np.maximum(positive.max(axis=0), negative.max(axis=0)) / TARGET  # no pair can pass at this scale
    assert np.all(scale >= usual * (1 - 1e-6)) and np.all(scale <= safe * (1 + 1e-6))
    assert np.all(safe <= usual * 2 + 1e-9)  # never coarser than 7-bit weights (reduce_range)

    def error(q, s):
        return ((q.astype(np.float64) * s - weights) ** 2).sum(axis=0)

    # Both ends are among the scales tried: the coarse one, where rounding alone fits every pair, and the usual
    # one with the pairs that pass it scaled down.
    at_safe = np.clip(np.rint(weights / safe), -TARGET, TARGET)
    assert fitting(at_safe) <= PAIR_LIMIT
    at_usual = fit(np.clip(np.rint(weights / usual), -TARGET, TARGET))
    assert fitting(at_usual) <= PAIR_LIMIT
    chosen = error(ints, scale)
    assert np.all(chosen <= error(at_safe, safe) + 1e-12) and np.all(chosen <= error(at_usual, usual) + 1e-12)
    # The planted pair (0.2, 0.2) is neither rounded to half its precision nor cut to half its size.
    assert np.abs(ints[[10, 11], 0] * scale[0] - 0.2).max() < 0.2 / 8


def test_fit_scales_down_only_the_same_signed_weights_of_a_pair_that_passes():
    ints = np.array([[127, 100, -127, 90], [127, -100, -127, 30]], np.float32)
    fitted = fit(ints)
    assert fitted[:, 0].tolist() == [64, 64]      # 254 to 128
    assert fitted[:, 1].tolist() == [100, -100]   # opposite signs never pass
    assert fitted[:, 2].tolist() == [-64, -64]
    assert fitted[:, 3].tolist() == [90, 30]      # 120: fits
    assert fitting(fitted) <= PAIR_LIMIT


def test_a_column_of_zeros_keeps_a_usable_scale():
    ints, scale = quantize(np.zeros((4, 2), np.float32))
    assert not ints.any() and np.all(scale == 1.0)


def test_bound_pairs_rewrites_an_onnxruntime_quantization_and_stays_close_to_fp32(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = weights_with_outliers()
    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    _matmul_model(source)
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
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    _matmul_model(source)
    quantize_dynamic(str(source), str(target), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8)
    model = onnx.load(str(source))
    model.graph.initializer[0].name = "renamed"  # the fp32 graph no longer holds the quantized weights' source
    onnx.save(model, str(source))
    written = target.read_bytes()
    with pytest.raises(ValueError, match="no fp32 weights"):
        bound_pairs(source, target)
    assert target.read_bytes() == written  # nothing half-rewritten


def test_an_export_whose_weights_cannot_be_bounded_is_refused_with_a_way_out(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from qa.embed import export
    from qa.errors import ModelUnavailable

    source = tmp_path / "fp32.onnx"
    _matmul_model(source)

    def unexpected(*_):
        raise ValueError("mm: weights 'w' are not named as onnxruntime's quantizer names them")

    monkeypatch.setattr(export, "bound_pairs", unexpected)
    with pytest.raises(ModelUnavailable, match="cannot be bounded.*--encoder fp32.*--query-encoder fp32"):
        export._quantize(source, tmp_path / "int8.onnx", export.quant_settings({"model_type": "mpnet"}))


def _matmul_model(path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 12])],
        initializer=[numpy_helper.from_array(weights_with_outliers(), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
