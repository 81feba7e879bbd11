"""A sentence-transformers model run by onnxruntime on the CPU: the int8 export, then no torch at run time.

Encoding needs only ``onnxruntime``, ``tokenizers`` and numpy, so a warm start
takes ~0.5 s instead of ~10 s (no torch import), and a one-question encode is
7-12 times faster than torch's on this machine's CPU (bench/speed/encode.py).

Int8 vectors are close to the torch model's (cosine ≈ 0.99) but not equal, so an
int8 embedder carries its own ``name`` (the model's plus ``INT8``) and an index's
manifest records exactly how its passage vectors were made. They stay in the
torch model's vector space (``vector_space``): int8 queries against fp32
passages kept 94% of the top 10 and the same nDCG@10 on a 2,000-document sample,
so a searcher may accept either. The ``fp32`` encoder exports without
quantizing: its vectors match the torch model's to ~1e-6, so it reports the
plain model name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.embed import calibration
from qa.embed.base import ENCODERS, INT8
from qa.embed.export import check_path, export_onnx, import_onnxruntime, load_tokenizer, model_settings
from qa.embed.pooling import pool_spans
from qa.errors import ModelUnavailable


class OnnxEmbedder:
    """A sentence-transformers mean-pooling model run by onnxruntime on the CPU.

    Same interface as :class:`qa.embed.sbert.SentenceTransformerEmbedder`: ``name``,
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
        encoder: ``int8`` (default) or ``fp32``.
        workers: texts encoded at once, each by its own Python thread on the shared
            session (onnxruntime runs them in parallel). For builds: on two cores,
            two workers of one thread each encoded 120 passages/s against 97 for one
            run of two threads and 52 for torch fp32 (bench/speed/encode.py).
    """

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        model_name: str | None = None,
        threads: int = 1,
        encoder: str = "int8",
        workers: int = 1,
    ):
        ort = import_onnxruntime()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, not {encoder!r}")
        if threads < 1 or workers < 1:
            raise ValueError("threads and workers must be at least 1")
        model_dir = Path(model_dir)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from tokenizers import Tokenizer

            settings = model_settings(model_dir)
            self._tokenizer = load_tokenizer(model_dir, int(settings["max_seq_length"]))
            self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except ModelUnavailable:
            raise
        except Exception as exc:
            raise ModelUnavailable(f"cannot load the tokenizer at {model_dir}: {exc}") from exc
        self.max_tokens = int(settings["max_seq_length"])
        self.dimension = int(settings["dimension"])
        self._counter.no_truncation()
        self._counter.no_padding()

        self.path = model_dir
        self.encoder = encoder
        self.threads = threads
        self.workers = workers
        self.onnx_path = export_onnx(model_dir, cache_dir, encoder)
        #: The fp32 model whose vectors these approximate (int8) or equal (fp32).
        self.model_name = model_name or str(model_dir.resolve())
        self.name = self.model_name + INT8 if encoder == "int8" else self.model_name

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
        if encoder == "int8":
            self.fidelity = self._check_fidelity()

    def _check_fidelity(self) -> float:
        """Return the worst cosine of this CPU's int8 vectors of ``calibration.CHECK`` to fp32's; refuse below
        ``calibration.FIDELITY``.

        Integer kernels differ by CPU (VNNI, AVX2, NEON): an export is used only
        where it was seen to hold, never on the word of another machine.
        """
        try:
            expected = np.load(check_path(self.onnx_path), allow_pickle=False)
            got = self.encode(calibration.CHECK)
            cosines = (got * expected).sum(axis=1)
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"the int8 export {self.onnx_path} has no usable check vectors ({exc}): "
                                   f"delete it and it is made again") from exc
        worst = int(cosines.argmin())
        if not cosines[worst] >= calibration.FIDELITY:
            raise ModelUnavailable(
                f"the int8 export of {self.model_name} is not accurate on this CPU: cosine {cosines[worst]:.4f} to "
                f"the fp32 model for {calibration.CHECK[worst][:40]!r} (at least {calibration.FIDELITY} needed); "
                "use --encoder fp32 for passages and --query-encoder fp32 for questions"
            )
        return float(cosines[worst])

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
        step = 1 if self.encoder == "int8" else max(1, batch_size)
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



def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        return None
    return tqdm(total=total, unit="text", desc="Encoding")
