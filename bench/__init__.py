"""Benchmarks, in folders by purpose; each runs from the repository root as ``python -m bench.<folder>.<name>``.

- ``datasets``: the judged query sets the others use, made or fetched into ``bench/.cache``;
- ``quality``: every retrieval mode on every set (the protocol in docs/quality.md);
- ``tuning``: sweeps that choose a setting on tuning data only;
- ``speed``: build, encode, extract, index and end-to-end latency;
- ``load``: the server under clients, during rebuilds, on Ray.

Figures go to ``bench/results`` and the cache to ``bench/.cache`` (both git-ignored).
"""
