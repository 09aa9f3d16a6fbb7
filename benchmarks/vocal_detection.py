"""Do the singing judgement and the singing detector keep every sung track and drop
instrumentals, on generated songs and on real recordings?

The evidence (every window's transcript, scores and encoder states: ``EVIDENCE_SETTINGS``) is
extracted once per set of ``SETS`` into ``--workdir``; the default judgement and the shipped
detector are scored on it. ``--train-detector`` trains ``DETECTOR_VARIANTS`` on
``detector-train`` and the real tuning rows, scored out of fold; ``--ship mlp`` writes one into
the package (docs/singing-detection.md, docs/singing-detector.md).

    .venv/bin/python -m benchmarks.vocal_detection --workdir /tmp/vocal-bench --short-works 20 \\
        --full-works 3
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    bench_parser,
    extract,
    make_bench,
    print_table,
    set_args,
    share,
    write_json,
)
from pipeline.config import SingingConfig
from pipeline.io.catalog import read_catalog
from pipeline.io.parquet import read_table
from pipeline.models.singing_detector import DEFAULT_DETECTOR, DetectorConfig
from pipeline.records import Transcript
from pipeline.stages.singing import judge_track

MIN_VOICE_IN_SEGMENT_S = 1.0
Spans = list[tuple[float, float]]
Label = tuple[str, Spans | None, bool, float | None]  # kind, true regions, held out, voice dB


@dataclass(frozen=True)
class Track:
    track_id: str
    kind: str  # sung, spoken or instrumental
    regions: Spans | None  # true voiced spans; None where only the track label is known
    held_out: bool
    vocal_db: float | None  # voice level against the band; None for real recordings
    windows: list[dict[str, Any]]  # the segments-table rows of its fixed windows
    work: str
    pooled: np.ndarray  # (windows, 2d) mean+max pooled encoder states, from the shards


Detector = Callable[[Track], np.ndarray]  # (windows,) bool: the windows it calls sung


SCORES = ("language", "language_probability", "avg_logprob", "no_speech_prob")
SCORES += ("compression_ratio", "temperature")  # a segments-table row's Transcript fields


def judged(track: Track) -> np.ndarray:
    """The default judgement of each window: the labels the detector learns."""
    transcripts = [
        Transcript((), tuple(w["tokens"]), w["transcript"], **{k: w[k] for k in SCORES})
        for w in track.windows
    ]
    return np.array([v.sung for v in judge_track(transcripts, SingingConfig())], bool)


DEFAULT = "whisper-judge"  # the pipeline's default judgement


def _overlap(a: Spans, b: Spans) -> float:
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def _merge(spans: Spans) -> Spans:
    merged: Spans = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def score(tracks: list[Track], detector: Detector) -> dict[str, Any]:
    """Window agreement with the default judgement, tracks kept per kind, and against true
    regions: kept windows with voice, coverage of the voiced seconds."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [kept, total]
    kept_segments = voiced_segments = agree = windows = 0
    voiced_s = covered_s = 0.0
    for track in tracks:
        keep = detector(track)
        spans = [(w["start_s"], w["end_s"]) for w, k in zip(track.windows, keep, strict=True) if k]
        agree += int(np.sum(keep == judged(track)))
        windows += len(keep)
        counts[track.kind][0] += bool(spans)
        counts[track.kind][1] += 1
        if track.regions is None:
            continue
        kept_segments += len(spans)
        voiced_segments += sum(
            _overlap([s], track.regions) >= MIN_VOICE_IN_SEGMENT_S for s in spans
        )
        voiced_s += sum(e - s for s, e in track.regions)
        covered_s += _overlap(_merge(spans), track.regions)
    instrumental_kept, instrumentals = counts["instrumental"]
    return {
        "window_agreement": share(agree, windows),
        "sung_kept": share(*counts["sung"]),
        "instrumental_rejected": share(instrumentals - instrumental_kept, instrumentals),
        "spoken_kept": share(*counts["spoken"]),
        "segments_with_voice": share(voiced_segments, kept_segments),
        "coverage": share(covered_s, voiced_s),
        "tracks": {k: v[1] for k, v in sorted(counts.items())},
    }


LEVEL_BINS = ((-6.0, -2.0), (-2.0, 2.0), (2.0, 6.0))
LEVEL_COLUMNS = ("data", "voice_db", "sung_kept", "segments_with_voice", "coverage", "tracks")


def by_level(name: str, tracks: list[Track]) -> list[dict[str, Any]]:
    """The default on the voiced tracks of each band of voice levels: the targets hold at every
    level, not only on average."""
    rows = []
    for low, high in LEVEL_BINS:
        members = [t for t in tracks if t.vocal_db is not None and low <= t.vocal_db <= high]
        if members:
            level = {"data": name, "voice_db": f"{low:+.0f}..{high:+.0f}"}
            rows.append(level | score(members, judged))
    return rows


# The evidence run keeps every window, judged unsung or not, with its encoder states. Its judge
# is the default: which windows skip the temperature fallback depends on it, so the labels
# (the default judgement re-run on each window) are the verdicts of a default extraction.
EVIDENCE_SETTINGS = ("singing.keep_unsung_tracks=true", "singing.keep_unsung_states=true")


def load_tracks(catalog: Path, features: Path, labels: dict[str, Label]) -> list[Track]:
    """Join the labels, the windows of the segments table and the shards' pooled states."""
    from pipeline.io.webdataset import list_shards
    from pipeline.train.singing import read_windows

    windows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_table(features / "segments", "segments").to_pylist():
        windows[row["track_id"]].append(row)
    tracks_table = read_table(features / "tracks", "tracks").to_pylist()
    ok = {r["track_id"] for r in tracks_table if r["status"] == "ok"}
    shards = read_windows(list_shards(features))
    states = dict(zip(shards.keys, shards.pooled, strict=True))
    tracks = []
    for entry in read_catalog(catalog):
        tid = entry.track_id
        if tid not in ok:
            raise RuntimeError(f"{tid} was rejected before any detector ran; see {features}")
        ordered = sorted(windows[tid], key=lambda w: w["segment_index"])
        stacked = np.stack([states[(tid, w["segment_index"])] for w in ordered])
        work = entry.work_id or tid
        tracks.append(Track(tid, *labels[tid], ordered, work, stacked))
    return tracks


def generated_set(workdir: Path, name: str, bench_args: str) -> tuple[Path, dict[str, Label]]:
    """A ``make-bench`` catalog (generated once) and its ground truth per track."""
    from pipeline.synth.truth import read_truth

    catalog = make_bench(workdir / name, *bench_args.split())
    truth = read_truth(catalog)
    return catalog, {tid: (t.kind, list(t.regions), False, t.vocal_db) for tid, t in truth.items()}


def real_set(workdir: Path, subset: bool) -> tuple[Path, dict[str, Label]]:
    """The Debian recordings (fetched once) and their labels; with ``subset``, only the held-out
    ones and ``REAL_SUBSET_TUNING``, in a catalog of their own beside the shared files."""
    from benchmarks.real_recordings import read_labels, real_catalog

    labels = read_labels()
    catalog = real_catalog(workdir / "real-cache")
    if subset:
        folder = workdir / "real-subset"
        folder.mkdir(exist_ok=True)
        for shared in ("root", "tracks"):
            if not (folder / shared).exists():
                (folder / shared).symlink_to((workdir / "real-cache" / shared).resolve())
        chosen = [t for t in labels if t.held_out or t.track_id in REAL_SUBSET_TUNING]
        catalog = real_catalog(folder, sorted(chosen, key=lambda t: t.held_out))
    return catalog, {t.track_id: (t.label, None, t.held_out, None) for t in labels}


SETS = ("generated-short", "generated-full", "real", "detector-train")
# The detector's generated training songs: a seed of their own, never scored as held out.
DETECTOR_TRAIN_BENCH = (
    "--works 8 --versions-per-work 2 --distractors 4 --instrumentals 8 --spoken 2 "
    "--length short --seed 27"
)
# The real recordings a 2-core CPU extracts in about an hour: every held-out one and nine
# tuning ones (the four shortest songs but one long one, and instrumentals of both packages).
REAL_SUBSET_TUNING = (
    "drascula-01 drascula-29 drascula-31 muldjord-armygeddon drascula-13 drascula-17 drascula-25 "
    "drascula-28 sectoid-metal-madness"
).split()
# Tested on the held-out rows and the other fold: no training work is kept back for a test split.
DETECTOR_VARIANTS = {
    "probe": DetectorConfig(hidden_size=0, test_fraction=0.0),
    "mlp": DetectorConfig(test_fraction=0.0),
}


def _probabilities(model: Any, track: Track) -> np.ndarray:
    """(windows,) probability of "sung" of each window of the track."""
    import torch

    with torch.no_grad():
        return torch.sigmoid(model.logits(torch.from_numpy(track.pooled))).numpy()


def train_detectors(
    loaded: dict[str, list[Track]], workdir: Path, ship: str | None
) -> dict[str, Detector]:
    """Each of ``DETECTOR_VARIANTS`` trained by ``fit_detector`` (what ``pipeline run train
    singing`` runs) on the detector-train set and the real tuning rows. A training track is
    scored by the model of the other fold (two folds by work), any other track by the model
    trained on all. ``ship`` exports that variant's model into the package."""
    from pipeline.models.singing_detector import detector_spec, load_detector
    from pipeline.train.singing import Windows, export_detector, fit_detector

    training = [
        t for name in ("detector-train", "real") for t in loaded.get(name, []) if not t.held_out
    ]
    works = sorted({t.work for t in training})
    order = np.random.default_rng(0).permutation(len(works))
    fold_of = {works[i]: rank % 2 for rank, i in enumerate(order)}
    windows = Windows(
        np.concatenate([t.pooled for t in training]),
        np.concatenate([judged(t) for t in training]),
        tuple(t.work for t in training for _ in t.windows),
        tuple((t.track_id, w["segment_index"]) for t in training for w in t.windows),
    )
    window_fold = np.array([fold_of[w] for w in windows.works])
    # by identity: generated sets reuse track ids (w000-v0-it), and only these Track objects trained
    in_training = {id(t): fold_of[t.work] for t in training}
    detectors: dict[str, Detector] = {}
    for variant, config in DETECTOR_VARIANTS.items():
        models = {}
        for fold in ("all", 0, 1):
            run = workdir / (f"detector-{variant}" + ("" if fold == "all" else f"-fold{fold}"))
            shutil.rmtree(run, ignore_errors=True)  # the labels may have changed: train afresh
            fit_detector(
                windows if fold == "all" else windows.subset(window_fold != fold), run, config
            )
            models[fold] = load_detector(detector_spec(str(run)))

        def detect(track: Track, models: dict = models) -> np.ndarray:
            fold = in_training.get(id(track))
            return _probabilities(models["all" if fold is None else 1 - fold], track) > 0.5

        detectors[f"singing-detector {variant}"] = detect
        if variant == ship:
            export_detector(workdir / f"detector-{variant}", DEFAULT_DETECTOR)
            print(f"shipped detector-{variant} as {DEFAULT_DETECTOR}")
    return detectors


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "vocal-bench")
    parser.add_argument("--short-works", type=int, default=30, help="works of ~45 s clips")
    parser.add_argument("--full-works", type=int, default=5, help="works of 3-4 minute songs")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS[:3]))
    parser.add_argument(
        "--real-subset", action="store_true", help="only REAL_SUBSET_TUNING and the held out"
    )
    parser.add_argument(
        "--separator-weights",
        type=Path,
        help="an HTDemucs .th file: Whisper hears the vocal stem instead of the mix",
    )
    parser.add_argument(
        "--train-detector", action="store_true", help="train the singing detector's variants"
    )
    parser.add_argument(
        "--ship", choices=sorted(DETECTOR_VARIANTS), help="write this variant into the package"
    )
    args = parser.parse_args(argv)
    weights = args.separator_weights
    separator = ["--separator", "htdemucs", "--separator-weights", str(weights)] if weights else []
    evidence_args = [*set_args(*EVIDENCE_SETTINGS), *separator]
    suffix = "-htdemucs" if weights else ""
    names = list(dict.fromkeys(args.sets + (["detector-train"] if args.train_detector else [])))
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench_args = {
        "generated-short": f"--works {args.short_works} --versions-per-work 3 --distractors 10 "
        "--instrumentals 20 --spoken 5 --length short",
        "generated-full": f"--works {args.full_works} --versions-per-work 2 --distractors 2 "
        "--instrumentals 5 --spoken 2 --length full",
        "detector-train": DETECTOR_TRAIN_BENCH,
    }
    loaded: dict[str, list[Track]] = {}
    for name in names:
        if name == "real":
            catalog, labels = real_set(args.workdir, args.real_subset)
        else:
            catalog, labels = generated_set(args.workdir, name, bench_args[name])
        features = args.workdir / f"{name}-features{suffix}"
        extract(catalog, features, *evidence_args)  # resumes what is there
        loaded[name] = load_tracks(catalog, features, labels)
    detectors: dict[str, Detector] = {DEFAULT: judged}
    if args.train_detector:
        detectors |= train_detectors(loaded, args.workdir, args.ship)
    else:
        from pipeline.models.singing_detector import detector_spec, load_detector

        shipped = load_detector(detector_spec("default"))
        detectors["singing-detector (shipped)"] = lambda t: _probabilities(shipped, t) > 0.5
    rows, levels = [], []
    for name, tracks in loaded.items():
        groups = {name: tracks}
        if any(t.held_out for t in tracks):
            groups = {
                f"{name} (tuning)": [t for t in tracks if not t.held_out],
                f"{name} (held out)": [t for t in tracks if t.held_out],
            }
        for group, members in groups.items():
            for detector, detect in detectors.items():
                rows.append({"data": group, "detector": detector, **score(members, detect)})
        levels += by_level(name, tracks)
    print_table([{k: v for k, v in r.items() if k != "tracks"} for r in rows])
    print(f"\n{DEFAULT} by voice level against the band:")
    print_table([{k: v for k, v in r.items() if k in LEVEL_COLUMNS} for r in levels])
    payload = {
        "rows": rows,
        "default_by_voice_level": levels,
        "judge_config": dataclasses.asdict(SingingConfig()),
        "evidence_args": evidence_args,
    }
    name = "vocal_detection" + suffix + ("-detector" if args.train_detector else "")
    print(f"json: {write_json(name, payload)}")


if __name__ == "__main__":
    main()
