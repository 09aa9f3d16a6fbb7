"""ANN indexes against exact search on random unit vectors: recall@10, queries per second,
build time and memory, for faiss and usearch HNSW side by side, in fresh processes; exact is the
pipeline's own tiled search, faiss-flat faiss's exact one.

Random unit vectors in high dimension are the hardest case for an ANN index: they have no
clusters or low-dimensional structure to exploit, and every point's 10 nearest neighbours sit
at almost the same distance as the rest. Real embeddings of a catalog, where versions of one
work crowd together, are easier; these figures are a floor.

Every method runs in its own process on the same vectors (a fixed seed), so the peak RSS
(VmHWM) of a row is that method's alone plus the vectors themselves (``data_MB``). Queries are
``--queries`` catalog vectors, each searching the catalog for its 10 nearest *other* vectors,
as ``pipeline run match`` does; recall@10 is against the exact answer of the same queries.
``match_all_s`` estimates matching the whole catalog against itself: build + n / QPS.

``--versions K`` plants K versions of each query in the catalog (cosine 0.3-0.9 to it, where
its random 10th nearest sits near 0.2): ``versions_found`` is the share of them each method
returns among the query's 10, what matching a catalog of works must get right.

A build that passes ``--max-build-s`` stops there: its row gives the vectors inserted so far
and ``build_s`` projected linearly to the whole catalog (``projected``), a lower bound, since
each insertion into a larger graph costs a little more; it has no recall or QPS.

    PYTHONPATH=. python -m benchmarks.ann --sizes 10000 100000 1000000 --dims 384 512

usearch is not a pipeline dependency: ``pip install usearch==2.26.6`` to compare it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import print_table, write_json
from pipeline.retrieval.exact import exact_search

K = 10
HNSW_M = 32  # graph edges per node, both libraries
EF_CONSTRUCTION = 128  # usearch's default expansion_add; faiss's default is 40
EF_SEARCH = (64, 128, 256, 1024)
ADD_BLOCK = 50_000  # vectors per insertion call: the build-time limit is checked between them
METHODS = ("exact", "faiss-flat", "faiss-hnsw", "usearch-hnsw")


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
    drawn from 0.3 to 0.9 (a random pair sits near 0, a query's 10th nearest near 0.2 at
    384-d); returns their (q, per_query) positions. A catalog's versions of one work: what
    matching must find."""
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
    """(q, K) neighbours of each query with the query itself removed (or the last one, if the
    index did not return it)."""
    rows = []
    for own, row in zip(queries, positions, strict=True):
        kept = row[row != own]
        rows.append(kept[:K])
    return np.array(rows)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` that its row of ``found`` holds."""
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(shares))


def _rss_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def _timed(search: Any, repeats: int = 3) -> tuple[np.ndarray, float]:
    """The result of ``search()`` and its median wall seconds over ``repeats`` runs."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = search()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def _add(add: Any, vectors: np.ndarray, start: float, max_build_s: float) -> int:
    """Insert ``vectors`` block by block until all are in or ``max_build_s`` has passed."""
    for done in range(0, len(vectors), ADD_BLOCK):
        if time.perf_counter() - start > max_build_s:
            return done
        add(done, vectors[done : done + ADD_BLOCK])
    return len(vectors)


def _faiss(vectors: np.ndarray, queries: np.ndarray, max_build_s: float) -> dict[str, Any]:
    import faiss

    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    built = _add(lambda _, block: index.add(block), vectors, start, max_build_s)
    build_s = time.perf_counter() - start
    if built < len(vectors):
        return {"build_s": build_s, "built": built}
    index_mb = faiss.serialize_index(index).nbytes / 1e6
    searches = {}
    for ef in EF_SEARCH:
        index.hnsw.efSearch = ef
        searches[ef] = _timed(lambda: index.search(vectors[queries], K + 1)[1])
    return {"build_s": build_s, "index_MB": index_mb, "searches": searches}


def _faiss_flat(vectors: np.ndarray, queries: np.ndarray, max_build_s: float) -> dict[str, Any]:
    """faiss's own exact search (``IndexFlatIP``): the library's answer to what ``exact`` does."""
    import faiss

    start = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    build_s = time.perf_counter() - start
    search = _timed(lambda: index.search(vectors[queries], K + 1)[1])
    return {"build_s": build_s, "index_MB": vectors.nbytes / 1e6, "searches": {"-": search}}


def _usearch(vectors: np.ndarray, queries: np.ndarray, max_build_s: float) -> dict[str, Any]:
    try:
        from usearch.index import Index
    except ImportError:
        raise SystemExit(  # only this comparison needs it: not a pipeline dependency
            "usearch is not installed: `.venv/bin/pip install usearch==2.26.6`, "
            "or leave it out with --methods exact faiss-hnsw"
        ) from None

    start = time.perf_counter()
    index = Index(
        ndim=vectors.shape[1],
        metric="ip",
        dtype="f32",
        connectivity=HNSW_M,
        expansion_add=EF_CONSTRUCTION,
    )
    built = _add(
        lambda done, block: index.add(np.arange(done, done + len(block)), block, threads=0),
        vectors,
        start,
        max_build_s,
    )
    build_s = time.perf_counter() - start
    if built < len(vectors):
        return {"build_s": build_s, "built": built}
    searches = {}
    for ef in EF_SEARCH:
        index.expansion_search = ef
        searches[ef] = _timed(lambda: index.search(vectors[queries], K + 1, threads=0).keys)
    return {"build_s": build_s, "index_MB": index.memory_usage / 1e6, "searches": searches}


def worker(
    method: str,
    n: int,
    dim: int,
    n_queries: int,
    truth_file: Path,
    max_build_s: float,
    versions: int = 0,
) -> dict[str, Any]:
    """One method on one catalog, in this process: its rows of the table."""
    vectors = random_unit_vectors(n, dim)
    data_mb = _rss_mb("VmRSS")
    queries = np.random.default_rng(1).choice(n, size=n_queries, replace=False)
    planted = plant_versions(vectors, queries, versions) if versions else None
    base = {"n": n, "dim": dim, "method": method, "versions": versions}
    if method == "exact":
        found, seconds = _timed(lambda: exact_search(vectors, vectors[queries], K + 1)[0])
        np.save(truth_file, others(found, queries))
        settings = {"-": (found, seconds)}
        build_s, index_mb = 0.0, vectors.nbytes / 1e6
    else:
        build = {"faiss-flat": _faiss_flat, "faiss-hnsw": _faiss, "usearch-hnsw": _usearch}[method]
        built = build(vectors, queries, max_build_s)
        if "built" in built:
            projected = built["build_s"] * n / max(built["built"], 1)
            row = {**base, "built": built["built"], "build_s": f"{projected:.0f} projected"}
            return {"rows": [{**row, "peak_rss_MB": round(_rss_mb("VmHWM"))}]}
        settings, build_s, index_mb = built["searches"], built["build_s"], built["index_MB"]
    truth = np.load(truth_file)
    rows = []
    for setting, (found, seconds) in settings.items():
        qps = n_queries / seconds
        rows.append(
            {
                **base,
                "ef_search": setting,
                "recall_at_10": round(recall(others(found, queries), truth), 4),
                "versions_found": "-"
                if planted is None
                else round(recall(others(found, queries), planted), 4),
                "qps": round(qps),
                "build_s": round(build_s, 1),
                "match_all_s": round(build_s + n / qps, 1),
                "index_MB": round(index_mb),
                "data_MB": round(data_mb),
                "peak_rss_MB": round(_rss_mb("VmHWM")),
            }
        )
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 512])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--max-build-s", type=float, default=float("inf"))
    parser.add_argument(
        "--versions", type=int, default=0, help="versions planted per query (0: none)"
    )
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "N", "DIM", "TRUTH"))
    args = parser.parse_args()
    if args.worker:
        method, n, dim, truth = args.worker
        result = worker(
            method, int(n), int(dim), args.queries, Path(truth), args.max_build_s, args.versions
        )
        print(json.dumps(result))
        return
    name = f"ann-{'-'.join(map(str, args.sizes))}-d{'-'.join(map(str, args.dims))}"
    name += f"-v{args.versions}" if args.versions else ""
    settings = {
        "hnsw_m": HNSW_M,
        "ef_construction": EF_CONSTRUCTION,
        "queries": args.queries,
        "max_build_s": args.max_build_s,
        "versions": args.versions,
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dim in args.dims:
            for n in args.sizes:
                truth = Path(tmp) / f"truth-{n}-{dim}.npy"
                for method in ["exact", *(m for m in args.methods if m != "exact")]:
                    command = [sys.executable, "-m", "benchmarks.ann", "--worker", method]
                    command += [str(n), str(dim), str(truth), "--queries", str(args.queries)]
                    command += ["--max-build-s", str(args.max_build_s)]
                    command += ["--versions", str(args.versions)]
                    done = subprocess.run(command, capture_output=True, text=True)
                    if done.returncode:
                        sys.exit(f"{method} n={n} dim={dim} failed:\n{done.stderr}")
                    rows += json.loads(done.stdout)["rows"]
                    write_json(name, {"settings": settings, "rows": rows})  # a kill keeps these
                    print(f"done {method} n={n} dim={dim}", file=sys.stderr, flush=True)
    print_table(rows)
    print(f"json: {write_json(name, {'settings': settings, 'rows': rows})}")


if __name__ == "__main__":
    main()
