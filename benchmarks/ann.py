"""Matching's search on random unit vectors with planted versions: recall@10 against exact,
versions found, queries per second, build time and peak memory, each method in its own process
(docs/matching.md).

    .venv/bin/python -m benchmarks.ann --sizes 10000 100000 1000000 --dims 384 --versions 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import interleaved, print_table, run_quiet, write_json
from pipeline.retrieval.exact import exact_search

K = 10
HNSW_M = 32  # graph edges per node, as pipeline/retrieval/index.py builds
EF_CONSTRUCTION = 128
EF_SEARCH = (64, 128, 256, 1024)
METHODS = ("exact", "faiss-flat", "faiss-hnsw")


def random_unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors, drawn in blocks so the peak stays near n * dim * 4 bytes."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def plant_versions(vectors: np.ndarray, queries: np.ndarray, per_query: int) -> np.ndarray:
    """Overwrite ``per_query`` non-query vectors per query with versions of it, at a cosine
    from 0.3 to 0.9 (a random pair sits near 0, a query's 10th nearest near 0.2 at 384-d);
    their (q, per_query) positions."""
    rng = np.random.default_rng(2)
    free = np.setdiff1d(np.arange(len(vectors)), queries)
    planted = rng.choice(free, size=(len(queries), per_query), replace=False)
    for query, positions in zip(queries, planted, strict=True):
        q = vectors[query]
        noise = rng.standard_normal((per_query, vectors.shape[1])).astype(np.float32)
        noise -= np.outer(noise @ q, q)  # orthogonal to the query
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        cosine = rng.uniform(0.3, 0.9, size=(per_query, 1)).astype(np.float32)
        vectors[positions] = cosine * q + np.sqrt(1 - cosine**2) * noise
    return planted


def others(positions: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(q, K) neighbours of each query without the query itself (or the last, if not found)."""
    return np.array([row[row != own][:K] for own, row in zip(queries, positions, strict=True)])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` that its row of ``found`` holds."""
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(shares))


def _rss_mb(field: str) -> float:
    """VmRSS or VmHWM of this process, in MB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def _searches(vectors: np.ndarray, queries: np.ndarray, method: str) -> tuple[float, dict]:
    """Build seconds and, per efSearch ("-" for exact), (neighbours, median search seconds)."""
    build_s, settings, index = 0.0, ("-",), None
    if method != "exact":
        import faiss

        start = time.perf_counter()
        if method == "faiss-flat":
            index = faiss.IndexFlatIP(vectors.shape[1])
        else:
            index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction, settings = EF_CONSTRUCTION, EF_SEARCH
        index.add(vectors)
        build_s = time.perf_counter() - start

    def search() -> np.ndarray:
        if index is None:
            return exact_search(vectors, vectors[queries], K + 1)[0]
        return index.search(vectors[queries], K + 1)[1]

    searches = {}
    for ef in settings:
        if ef != "-":
            index.hnsw.efSearch = ef
        seconds, found = interleaved({ef: search}, 3)
        searches[ef] = (found[ef], seconds[ef])
    return build_s, searches


def worker(method: str, n: int, dim: int, n_queries: int, truth_file: Path, versions: int) -> list:
    """One method on one catalog, in this process: its rows of the table."""
    vectors = random_unit_vectors(n, dim)
    data_mb = _rss_mb("VmRSS")
    queries = np.random.default_rng(1).choice(n, size=n_queries, replace=False)
    planted = plant_versions(vectors, queries, versions) if versions else None
    build_s, searches = _searches(vectors, queries, method)
    if method == "exact":
        np.save(truth_file, others(searches["-"][0], queries))
    truth, rows = np.load(truth_file), []
    for setting, (found, seconds) in searches.items():
        qps, neighbours = n_queries / seconds, others(found, queries)
        rows.append(
            {
                "n": n,
                "dim": dim,
                "method": method,
                "ef_search": setting,
                "recall_at_10": round(recall(neighbours, truth), 4),
                "versions_found": "-" if planted is None else round(recall(neighbours, planted), 4),
                "qps": round(qps),
                "build_s": round(build_s, 1),
                "match_all_s": round(build_s + n / qps, 1),
                "data_MB": round(data_mb),
                "peak_rss_MB": round(_rss_mb("VmHWM")),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--versions", type=int, default=2, help="planted per query (0: none)")
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "N", "DIM", "TRUTH"))
    args = parser.parse_args()
    if args.worker:
        method, n, dim, truth = args.worker
        rows = worker(method, int(n), int(dim), args.queries, Path(truth), args.versions)
        print(json.dumps(rows))
        return
    name = f"ann-{'-'.join(map(str, args.sizes))}-d{'-'.join(map(str, args.dims))}-v{args.versions}"
    settings = {"hnsw_m": HNSW_M, "ef_construction": EF_CONSTRUCTION, "queries": args.queries}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dim, n in product(args.dims, args.sizes):
            truth = Path(tmp) / f"truth-{n}-{dim}.npy"
            for method in ["exact", *(m for m in args.methods if m != "exact")]:
                command = [sys.executable, "-m", "benchmarks.ann", "--worker", method, str(n)]
                command += [str(dim), str(truth), "--queries", str(args.queries)]
                rows += json.loads(run_quiet([*command, "--versions", str(args.versions)]))
                write_json(name, {"settings": settings, "rows": rows})  # a kill keeps these
                print(f"done {method} n={n} dim={dim}", file=sys.stderr, flush=True)
    print_table(rows)
    print(f"json: {write_json(name, {'settings': settings, 'rows': rows})}")


if __name__ == "__main__":
    main()
