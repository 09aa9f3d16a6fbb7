"""Version retrieval on unseen works: trained LIVI and WEALY against the zero-shot methods
and their fusions, each MAP with a 95% bootstrap interval (docs/training.md).

Test side: the teacher benchmark's songs (``--test-dir``); train side: ``--train-works``
further works x 2 versions. LIVI and WEALY train at the paper's sizes with ``SCHEDULE``;
``--livi-set``/``--wealy-set KEY=VALUE`` change any setting and name the row, JSON and curves.
Everything is cached: a re-run trains only a new schedule or train side. ``--summarise``
prints earlier runs' rows side by side (a learning curve, or schedules).

    .venv/bin/python -m benchmarks.retrieval --workdir /tmp/retrieval-bench \\
        --test-dir /tmp/teacher-bench
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    BOOTSTRAP,
    RESULTS,
    bench_parser,
    distance_matrix,
    extract,
    file_vectors,
    map_rows,
    print_table,
    query_scores,
    sung_bench,
    write_csv,
    write_json,
)
from pipeline.config import apply_overrides
from pipeline.io.catalog import read_catalog
from pipeline.io.run_dir import LAST, RESUMABLE_KEYS, load_checkpoint
from pipeline.metrics import fused_distances
from pipeline.models.livi import LiviConfig
from pipeline.retrieval.embed import run_embed
from pipeline.synth.bench import bench_tracks
from pipeline.synth.catalog import write_catalog
from pipeline.train.livi import livi_preset, train_livi
from pipeline.train.wealy import WealyConfig, train_wealy, wealy_preset

FUSION_WEIGHT = 1.5  # WEALY's D = D_audio + 1.5 * D_wealy
TEST_VERSIONS, TRAIN_VERSIONS = 3, 2
# A schedule for small data, on the paper's model sizes (warm-up: --livi/--wealy-warmup).
SCHEDULE = {
    "livi": {"batch_size": 32, "lr": 3e-4, "layer_scale_init": 1.0, "epochs": 8},
    "wealy": {"works_per_batch": 16, "lr": 3e-4, "epochs": 8, "patience": None},  # 30 min
}


def train_bench(root: Path, first_work: int, works: int, versions: int, seed: int) -> Path:
    """Works ``first_work`` .. ``first_work + works - 1`` of the generator (each drawn from its
    own seed: never a test work), made once under ``root``; a bench of more works serves fewer
    through a catalog of its first ones."""
    wanted = {"first_work": first_work, "works": works, "versions_per_work": versions, "seed": seed}
    recorded, catalog = root / "bench-train-args.json", root / "bench-train" / "catalog.csv"
    if catalog.is_file() and recorded.is_file():
        found = json.loads(recorded.read_text())
        if found == wanted:
            return catalog
        if {**found, "works": works} != wanted or found["works"] < works:
            raise SystemExit(f"{root} holds a train bench made with {found}: use another --workdir")
        with open(catalog, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["work_id"][1:]) < first_work + works]
        return write_csv(catalog.with_name(f"catalog-{works}-works.csv"), rows)
    specs = bench_tracks(first_work + works, versions, 0, seed)
    made = write_catalog([s for s in specs if int(s.work_id[1:]) >= first_work], catalog.parent)
    recorded.write_text(json.dumps(wanted))
    return made


def train_features(root: Path, works: int) -> Path:
    """``features-train-N``, a folder per train side, begun as a copy of the largest smaller
    one: the extraction resumes those works instead of extracting them again."""
    folder = root / f"features-train-{works}"
    sizes = {int(f.name.rsplit("-", 1)[1]): f for f in root.glob("features-train-[0-9]*")}
    smaller = sorted((size, found) for size, found in sizes.items() if size < works)
    if smaller and not folder.exists():
        shutil.copytree(smaller[-1][1], folder)
    return folder


def run_folder(root: Path, kind: str, config: Any, train_works: int) -> Path:
    """A run folder per schedule and train side (more epochs resume the same folder)."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUMABLE_KEYS}
    values["train_works"] = train_works
    digest = hashlib.sha256(json.dumps(values, default=str).encode())
    return root / "runs" / f"{kind}-{digest.hexdigest()[:8]}"


def run_name(args: argparse.Namespace) -> str:
    """A run's JSON and curves: its train side and the ``--livi-set``/``--wealy-set`` items."""
    name = f"retrieval-{args.train_works}-works"
    for model in ("livi", "wealy"):
        name += "".join(f"-{model}-{item}" for item in getattr(args, f"{model}_set"))
    return name


def model_config(model: str, args: argparse.Namespace) -> LiviConfig | WealyConfig:
    """The paper's sizes, ``SCHEDULE``, the warm-up and seed given, then ``--MODEL-set``."""
    preset = livi_preset("paper") if model == "livi" else wealy_preset("paper")
    values = SCHEDULE[model] | {"warmup_steps": getattr(args, f"{model}_warmup"), "seed": args.seed}
    values["test_fraction"] = 0.0  # the test side is works of its own: hold no train work back
    return apply_overrides(dataclasses.replace(preset, **values), getattr(args, f"{model}_set"))


def schedule(config: LiviConfig | WealyConfig, settings: list[str]) -> str:
    """What a row trained with beyond the paper's sizes: the schedule, then the ``--*-set``."""
    if isinstance(config, LiviConfig):
        batch = f"batch {config.batch_size}, layer-scale init {config.layer_scale_init:g}"
    else:
        batch = f"{config.works_per_batch} works x 2 per batch"
    return (
        f"paper sizes; {batch}, lr {config.lr:g}, warm-up {config.warmup_steps}, "
        f"{config.epochs} epochs, best.pt" + "".join(f", {item}" for item in settings)
    )


def train_runs(
    train_features: Path, root: Path, args: argparse.Namespace
) -> tuple[dict[str, Path], dict[str, str], list[dict[str, Any]]]:
    """LIVI and WEALY trained on the train side: run folders, schedules, per-epoch curves."""
    runs, schedules, curves = {}, {}, []
    for name, train in (("LIVI", train_livi), ("WEALY", train_wealy)):
        config = model_config(name.lower(), args)
        runs[name] = run_folder(root, name.lower(), config, args.train_works)
        started = time.perf_counter()
        train(train_features, runs[name], config)
        print(f"{name}: trained in {time.perf_counter() - started:.0f} s ({runs[name]})")
        schedules[name] = schedule(config, getattr(args, f"{name.lower()}_set"))
        history = load_checkpoint(runs[name] / LAST)["history"]
        curves += [
            {"model": name, **{k: v for k, v in h.items() if k != "metric"}} for h in history
        ]
        RESULTS.mkdir(exist_ok=True)  # a fresh clone has none before the first JSON
        curve = RESULTS / f"{run_name(args)}-{name}-curve.png"
        shutil.copyfile(runs[name] / "training_curve.png", curve)
    return runs, schedules, curves


@dataclasses.dataclass
class Method:
    name: str
    distances: np.ndarray
    source: str  # how the row was made


def feature_methods(
    runs: dict[str, Path], schedules: dict[str, str], test_features: Path, ids: list[str], out: Path
) -> list[Method]:
    """Every model embedded from the test features, and the fusions with WEALY."""
    methods = []
    sources = {"whisper-avg": "zero-shot", "transcript-text": "zero-shot (LIVI's teacher)"}
    models = {name: name for name in sources} | {name: str(run) for name, run in runs.items()}
    out.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        target = out / f"{name}.parquet"
        run_embed(model, test_features, target)
        matrix = distance_matrix(file_vectors(target), ids)
        methods.append(Method(name, matrix, sources.get(name) or schedules[name]))
    by_name = {m.name: m for m in methods}
    for first in ("whisper-avg", "transcript-text", "LIVI"):
        fused = fused_distances(by_name[first].distances, by_name["WEALY"].distances, FUSION_WEIGHT)
        name = f"{first} + {FUSION_WEIGHT} x WEALY"
        methods.append(Method(name, fused, "fusion D_a + 1.5 D_wealy"))
    return methods


def metric_rows(methods: list[Method], works: list[str], seed: int) -> list[dict[str, Any]]:
    """``map_rows`` against transcript-text, with how each method was made."""
    scores = {method.name: query_scores(method.distances, works) for method in methods}
    rows = map_rows(scores, "transcript-text", seed)
    return [row | {"trained": m.source} for row, m in zip(rows, methods, strict=True)]


def summary_rows(runs: list[Path]) -> list[dict[str, Any]]:
    """The trained and zero-shot rows of earlier runs' JSON, one per run and method."""
    rows = []
    for path in runs:
        for row in json.loads(path.read_text())["rows"]:
            if row["method"] in ("whisper-avg", "transcript-text", "LIVI", "WEALY"):
                keep = ("method", "trained", "MAP", "MAP_95", "HR@1")
                rows.append({"run": path.stem, **{k: row[k] for k in keep}})
    return rows


def main() -> None:
    parser = bench_parser(__doc__, "retrieval-bench")
    parser.add_argument("--test-dir", type=Path, help="teacher benchmark folder (WORKDIR/test)")
    parser.add_argument("--test-works", type=int, default=50)
    parser.add_argument("--train-works", type=int, default=200)
    parser.add_argument("--livi-warmup", type=int, default=100, help="steps")
    parser.add_argument("--wealy-warmup", type=int, default=30, help="steps")
    for model in ("livi", "wealy"):
        parser.add_argument(
            f"--{model}-set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"any other {model.upper()} setting, as in pipeline run train {model} --set",
        )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--summarise", type=Path, nargs="+", metavar="JSON", help="print earlier runs side by side"
    )
    args = parser.parse_args()
    if args.summarise:
        print_table(summary_rows(args.summarise))
        return
    root, test_dir = args.workdir, args.test_dir or args.workdir / "test"
    root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    test_csv = sung_bench(test_dir / "bench", args.test_works, "short", TEST_VERSIONS, args.seed)
    train_csv = train_bench(root, args.test_works, args.train_works, TRAIN_VERSIONS, args.seed)
    train_dir = train_features(root, args.train_works)
    summaries = {
        "train": extract(train_csv, train_dir),
        "test": extract(test_csv, test_dir / "features"),
    }
    entries = read_catalog(test_csv)
    ids, works = [e.track_id for e in entries], [e.work_id or e.track_id for e in entries]
    runs, schedules, curves = train_runs(train_dir, root, args)
    embeddings = root / f"embeddings-{args.train_works}-works"
    methods = feature_methods(runs, schedules, test_dir / "features", ids, embeddings)
    rows = metric_rows(methods, works, args.seed)
    total_s = time.perf_counter() - began

    print(
        f"test: {len(ids)} tracks of {len(set(works))} works; train: "
        f"{summaries['train']['ok']} tracks of {args.train_works} other works"
    )
    print_table(rows)
    print()
    print_table(curves)
    print(f"total wall time: {total_s:.0f} s")
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "extract": summaries,
        "rows": rows,
        "curves": curves,
        "bootstrap": BOOTSTRAP,
        "fusion_weight": FUSION_WEIGHT,
        "total_wall_s": total_s,
    }
    print(f"json: {write_json(run_name(args), payload)}")


if __name__ == "__main__":
    main()
