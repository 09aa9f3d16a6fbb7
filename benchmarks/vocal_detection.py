"""Which singing detector keeps every sung track and drops instrumentals? Measured side by side.

Data: generated songs with ground truth (``pipeline make-bench``: the voice at -6..+6 dB under a
full accompaniment, instrumental intro, breaks and outro; short ~45 s clips and 3-4 minute
songs; instrumental and spoken-word tracks), and real recordings from Debian's archive
(``benchmarks/real_recordings.py``, labelled sung / spoken / instrumental, some held out).

Evidence is computed once per data set and cached in ``--workdir``: ``pipeline run extract``
in the default fixed 30 s windows with ``singing.keep_unsung_tracks`` (every window's
transcript and scores land in the segments table), and Silero's speech probability on the
mixture per 32 ms. Each detector configuration is then a rule over that evidence:

- ``silero-livi``: LIVI's rule (``segment.mode=vocal``): Silero > 0.5 regions, a track whose
  mean vocalness is under 0.5 is rejected;
- ``silero-tuned``: Silero regions at a lower threshold, a track kept when its regions sum to
  at least a few seconds (instead of a mean over the whole song);
- ``whisper-no-speech``: every window, kept when Whisper's no-speech probability is low;
- ``whisper-words``: every window, kept when its clean transcript has >= 4 words (what fixed
  mode did before the judgement: every text target was embedded);
- ``whisper-judge``: the default ``singing`` judgement (``pipeline/stages/singing.py``), and
  its thresholds swept;
- ``singing-detector``: the audio-only path's detector (``pipeline/train/singing.py``), a probe
  over each window's encoder states (from the shards: the evidence run keeps every window's
  with ``singing.keep_unsung_states``) that predicts the default judgement.

Metrics. Window agreement: the share of windows on which a window-based detector's verdict is
the default judgement's. Frames of 0.1 s: precision, recall and F1 of "inside a kept segment"
against the true vocal regions. Tracks: share of sung tracks kept, of instrumental tracks
rejected, of spoken tracks kept. Segments: share of kept segments with at least 1 s of voice,
and coverage, the share of voiced seconds inside a kept segment. Real recordings have track
labels only: sung tracks kept, and instrumentals with no embedded text (no kept segment).

    .venv/bin/python -m benchmarks.vocal_detection --workdir /tmp/vocal-bench

With ``--separator-weights PATH`` (an HTDemucs file), the evidence comes from the vocal stem:
Whisper and Silero hear it instead of the mixture (outputs beside the mixture's, suffixed).
With ``--greedy`` the evidence comes from greedy decoding alone (no temperature fallback);
``--greedy real`` only for the sets named.

``--train-detector`` trains the detector (a linear probe and a small MLP, ``DETECTOR_VARIANTS``)
on the ``detector-train`` set (generated songs of their own seed, ``DETECTOR_TRAIN_BENCH``) and
the real recordings' tuning rows, with the default judgement's verdicts as labels, and scores
it: on the training sets out of fold (two folds by work), on the held-out real rows (and any
other set) by the model trained on all of them. ``--ship probe`` then writes that variant's
model into the package (``pipeline/models/data/singing_detector``), the default detector:

    .venv/bin/python -m benchmarks.vocal_detection --workdir /tmp/vocal-bench --sets real \
        --real-subset --greedy real --train-detector --ship probe

Without ``--train-detector`` the shipped detector is scored (its tuning rows are its training
data). ``--real-subset`` scores only ``REAL_SUBSET`` of the real recordings (every held-out one
and nine tuning ones), which a 2-core CPU extracts in an hour.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from benchmarks._common import PIPELINE, extract_command, print_table, write_json
from pipeline.config import DecodeConfig, SegmentConfig, SingingConfig
from pipeline.io.catalog import read_catalog
from pipeline.io.parquet import read_table
from pipeline.records import DecodedAudio, Transcript
from pipeline.stages.decode import decode_audio
from pipeline.stages.segment import VAD_RATE_HZ, region_spans, vocal_probabilities, vocal_regions
from pipeline.stages.separate import stem_path
from pipeline.stages.singing import judge_track
from pipeline.train.singing import DEFAULT_DETECTOR, DetectorConfig

FRAME_S = 0.1
SEGMENT_S = 30.0
MIN_VOICE_IN_SEGMENT_S = 1.0
Spans = list[tuple[float, float]]


@dataclass(frozen=True)
class Track:
    track_id: str
    kind: str  # sung, spoken or instrumental
    duration_s: float
    regions: Spans | None  # true voiced spans; None where only the track label is known
    held_out: bool
    vocal_db: float | None  # voice level against the band; None for real recordings
    windows: list[dict[str, Any]]  # the segments-table rows of its fixed windows
    silero: np.ndarray  # speech probability per 32 ms window of the mixture
    work: str = ""
    # (windows, 2d) mean+max pooled encoder states, from the shards; None where a window has
    # no shard sample (evidence extracted before singing.keep_unsung_states)
    pooled: np.ndarray | None = None


Detector = Callable[[Track], Spans | None]  # kept segments, or None: track rejected


def _silero_livi(track: Track) -> Spans | None:
    return _silero(track, SegmentConfig(mode="vocal"), min_mean=0.5, min_vocal_s=0.0)


def _silero_tuned(track: Track) -> Spans | None:
    config = SegmentConfig(mode="vocal", vad_threshold=0.3, min_region_s=0.5)
    return _silero(track, config, min_mean=0.0, min_vocal_s=3.0)


def _silero(
    track: Track, config: SegmentConfig, min_mean: float, min_vocal_s: float
) -> Spans | None:
    probabilities = track.silero
    if float(probabilities.mean()) < min_mean:
        return None
    regions = vocal_regions(probabilities, config)
    if sum(e - s for s, e in regions) / VAD_RATE_HZ < max(min_vocal_s, 1e-9):
        return None
    total = round(track.duration_s * VAD_RATE_HZ)
    length = round(SEGMENT_S * VAD_RATE_HZ)
    return [(s / VAD_RATE_HZ, e / VAD_RATE_HZ) for s, e in region_spans(regions, total, length)]


def _transcript(row: dict[str, Any]) -> Transcript:
    return Transcript(
        prompt=(),
        tokens=tuple(row["tokens"]),
        text=row["transcript"],
        language=row["language"],
        language_probability=row["language_probability"],
        avg_logprob=row["avg_logprob"],
        no_speech_prob=row["no_speech_prob"],
        compression_ratio=row["compression_ratio"],
        temperature=row["temperature"],
    )


def _windows(keep: Callable[[dict[str, Any]], bool]) -> Detector:
    def detect(track: Track) -> Spans | None:
        kept = [(w["start_s"], w["end_s"]) for w in track.windows if keep(w)]
        return kept or None

    return detect


def _judge(config: SingingConfig) -> Detector:
    """The pipeline's judgement of a track's windows, neighbours included."""

    def detect(track: Track) -> Spans | None:
        verdicts = judge_track([_transcript(w) for w in track.windows], config)
        kept = [
            (w["start_s"], w["end_s"])
            for w, v in zip(track.windows, verdicts, strict=True)
            if v.sung
        ]
        return kept or None

    return detect


ALONE = {"beside_sung_min_words": 10**6}  # each window judged on its own


DEFAULT = "whisper-judge"  # the pipeline's default judgement
DETECTORS: dict[str, Detector] = {
    "silero-livi": _silero_livi,
    "silero-tuned": _silero_tuned,
    "whisper-no-speech": _windows(lambda w: w["no_speech_prob"] < 0.6),
    "whisper-words": _windows(lambda w: len(w["clean_transcript"].split()) >= 4),
    DEFAULT: _judge(SingingConfig()),
    # The judgement's thresholds, swept, each window alone: the floor on avg_logprob and the
    # ceiling on no_speech (no long-text route), then how many words make a text long, and how
    # unsure it may be; last, what a window beside a sung one needs.
    **{
        f"judge lp>={lp} ns<={ns}": _judge(
            SingingConfig(min_avg_logprob=lp, max_no_speech_prob=ns, long_text_words=10**6, **ALONE)
        )
        for lp, ns in ((-1.2, 0.8), (-2.0, 0.95), (-2.5, 0.9))
    },
    **{
        f"judge + long text >= {words} words lp>={lp}": _judge(
            SingingConfig(long_text_words=words, long_text_min_avg_logprob=lp, **ALONE)
        )
        for words, lp in ((8, -3.5), (12, -3.0), (12, -3.5), (12, -4.0))
    },
    **{
        f"judge + long + beside sung >= {words} words ns<={ns} lp>={lp}": _judge(
            SingingConfig(
                beside_sung_min_words=words,
                beside_sung_max_no_speech_prob=ns,
                beside_sung_min_avg_logprob=lp,
            )
        )
        for words, ns, lp in ((2, 0.8, -3.0), (1, 0.8, -3.0), (1, 0.9, -3.5), (1, 0.95, -4.5))
    },
}


def _overlap(a: Spans, b: Spans) -> float:
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def _frames(spans: Spans, duration_s: float) -> np.ndarray:
    mask = np.zeros(int(np.ceil(duration_s / FRAME_S)), bool)
    for s, e in spans:
        mask[int(s / FRAME_S) : int(np.ceil(e / FRAME_S))] = True
    return mask


def _share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def score(tracks: list[Track], detector: Detector) -> dict[str, Any]:
    """Track, segment and frame metrics of one detector on one data set."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [kept, total]
    tp = fp = fn = 0
    kept_segments = voiced_segments = 0
    voiced_s = covered_s = 0.0
    agree = judged = 0
    window_based = True
    for track in tracks:
        kept = detector(track)
        verdicts = _window_verdicts(track, kept)
        if verdicts is None:
            window_based = False
        else:
            agree += int(np.sum(verdicts == _judged(track)))
            judged += len(verdicts)
        counts[track.kind][0] += kept is not None
        counts[track.kind][1] += 1
        if track.regions is None:
            continue
        spans = kept or []
        truth, predicted = (
            _frames(track.regions, track.duration_s),
            _frames(spans, track.duration_s),
        )
        tp += int(np.sum(truth & predicted))
        fp += int(np.sum(~truth & predicted))
        fn += int(np.sum(truth & ~predicted))
        kept_segments += len(spans)
        voiced_segments += sum(
            _overlap([s], track.regions) >= MIN_VOICE_IN_SEGMENT_S for s in spans
        )
        voiced_s += sum(e - s for s, e in track.regions)
        covered_s += _overlap(_merge(spans), track.regions)
    precision, recall = _share(tp, tp + fp), _share(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 3) if precision and recall else None
    return {
        "window_agreement": _share(agree, judged) if window_based else None,
        "sung_kept": _share(*counts["sung"]),
        "instrumental_rejected": _share(
            counts["instrumental"][1] - counts["instrumental"][0], counts["instrumental"][1]
        ),
        "spoken_kept": _share(*counts["spoken"]),
        "segments_with_voice": _share(voiced_segments, kept_segments),
        "coverage": _share(covered_s, voiced_s),
        "frame_precision": precision,
        "frame_recall": recall,
        "frame_f1": f1,
        "tracks": {k: v[1] for k, v in sorted(counts.items())},
    }


def _judged(track: Track) -> np.ndarray:
    """The default judgement of each window: the labels the detector learns."""
    verdicts = judge_track([_transcript(w) for w in track.windows], SingingConfig())
    return np.array([v.sung for v in verdicts], bool)


def _window_verdicts(track: Track, kept: Spans | None) -> np.ndarray | None:
    """Which of the track's windows ``kept`` holds; None when it holds other spans."""
    spans = {(w["start_s"], w["end_s"]) for w in track.windows}
    if any(span not in spans for span in kept or []):
        return None
    chosen = set(kept or [])
    return np.array([(w["start_s"], w["end_s"]) in chosen for w in track.windows], bool)


def _merge(spans: Spans) -> Spans:
    merged: Spans = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


# The evidence run's judge settings, pinned: every window's transcript and scores are the same
# whatever they are (detectors re-judge the rows), and a new default must not void the cache.
EVIDENCE_SETTINGS = (
    "singing.keep_unsung_tracks=true",
    "singing.keep_unsung_states=true",  # every window's encoder states, for the detector
    "singing.min_words=4",
    "singing.max_no_speech_prob=0.8",
    "singing.min_avg_logprob=-1.2",
    "singing.long_text_words=1000000",
    "singing.long_text_min_avg_logprob=-1.2",
    "singing.beside_sung_min_words=1",
    "singing.beside_sung_max_no_speech_prob=0.8",
    "singing.beside_sung_min_avg_logprob=-3.0",
)


def extract_evidence(catalog: Path, output: Path, extra: list[str], reuse: bool = False) -> float:
    """Every window's transcript and scores (resumable); returns the wall seconds it took.
    ``reuse`` trusts a complete output as it is, made by whatever code and settings made it
    (its wall time is the one recorded), where ``run extract`` would refuse other settings."""
    manifest = output / "manifest.json"
    if reuse and manifest.is_file():
        document = json.loads(manifest.read_text())
        if document.get("status") == "complete":
            return float(document["summary"]["wall_s"])
    started = time.monotonic()
    settings = [arg for item in EVIDENCE_SETTINGS for arg in ("--set", item)]
    command = extract_command(catalog, output, *settings, *extra)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def silero_evidence(catalog: Path, cache: Path, stems: Path | None) -> dict[str, np.ndarray]:
    """Silero's probability per 32 ms of each track's mixture (or of its vocal stem, from
    ``--keep-stems``), cached in an .npz file."""
    if cache.exists():
        with np.load(cache) as data:
            return dict(data)
    probabilities = {}
    for entry in read_catalog(catalog):
        if stems is not None:
            samples, _ = soundfile.read(stem_path(stems, entry.track_id), dtype="float32")
            probabilities[entry.track_id] = vocal_probabilities(samples)
            continue
        audio = decode_audio(entry, DecodeConfig())
        if isinstance(audio, DecodedAudio):
            probabilities[entry.track_id] = vocal_probabilities(audio.samples)
    np.savez(cache, **probabilities)
    return probabilities


def load_tracks(
    catalog: Path,
    features: Path,
    silero: dict[str, np.ndarray],
    labels: dict[str, tuple[str, Spans | None, bool, float | None]],
) -> list[Track]:
    """Join the ground truth, the windows of the segments table and Silero's evidence."""
    windows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_table(features / "segments", "segments").to_pylist():
        windows[row["track_id"]].append(row)
    durations = {
        r["track_id"]: r["duration_s"]
        for r in read_table(features / "tracks", "tracks").to_pylist()
        if r["status"] == "ok"
    }
    pooled = _pooled_windows(features)
    tracks = []
    for entry in read_catalog(catalog):
        tid = entry.track_id
        if tid not in durations:
            raise RuntimeError(f"{tid} was rejected before any detector ran; see {features}")
        kind, regions, held_out, vocal_db = labels[tid]
        ordered = sorted(windows[tid], key=lambda w: w["segment_index"])
        duration = durations[tid]
        vectors = [pooled.get((tid, w["segment_index"])) for w in ordered]
        stacked = np.stack(vectors) if all(v is not None for v in vectors) and vectors else None
        work = entry.work_id or tid
        tracks.append(
            Track(
                tid,
                kind,
                duration,
                regions,
                held_out,
                vocal_db,
                ordered,
                silero[tid],
                work,
                stacked,
            )
        )
    return tracks


def _pooled_windows(features: Path) -> dict[tuple[str, int], np.ndarray]:
    """(track_id, segment_index) -> the window's pooled encoder states, from the shards."""
    from pipeline.io.webdataset import NoShardsError, list_shards
    from pipeline.train.singing import read_windows

    try:
        windows = read_windows(list_shards(features))
    except NoShardsError:
        return {}
    return dict(zip(windows.keys, windows.pooled, strict=True))


def generated_set(workdir: Path, name: str, make_bench_args: list[str]) -> tuple[Path, dict]:
    """A ``make-bench`` catalog (generated once) and its ground truth per track."""
    from pipeline.synth.truth import read_truth

    folder = workdir / name
    catalog = folder / "catalog.csv"
    if not catalog.exists():
        subprocess.run(
            [PIPELINE, "make-bench", "--output", str(folder), *make_bench_args],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    truth = read_truth(catalog)
    return catalog, {tid: (t.kind, list(t.regions), False, t.vocal_db) for tid, t in truth.items()}


def real_set(workdir: Path, subset: bool = False) -> tuple[Path, dict]:
    """The Debian recordings (fetched once with apt-get download) and their labels; with
    ``subset``, only the held-out ones and ``REAL_SUBSET_TUNING``, listed in a catalog of
    their own (the packages unpacked once, in ``real-cache``)."""
    from benchmarks.real_recordings import read_labels, real_catalog

    labels = read_labels()
    catalog = real_catalog(workdir / "real-cache")
    if subset:
        chosen = [t for t in labels if not t.held_out and t.track_id in REAL_SUBSET_TUNING]
        chosen += [t for t in labels if t.held_out]
        folder = workdir / "real-subset"
        folder.mkdir(exist_ok=True)
        for shared in ("root", "tracks"):
            if not (folder / shared).exists():
                (folder / shared).symlink_to((workdir / "real-cache" / shared).resolve())
        catalog = real_catalog(folder, chosen)
    return catalog, {lab.track_id: (lab.label, None, lab.held_out, None) for lab in labels}


SETS = ("generated-short", "generated-full", "real", "detector-train")
# The detector's generated training songs: a seed of their own, never scored as held out.
DETECTOR_TRAIN_BENCH = (
    "--works 8 --versions-per-work 2 --distractors 4 --instrumentals 8 --spoken 2 "
    "--length short --seed 27"
)
# The real recordings a 2-core CPU extracts in about an hour: every held-out one and nine
# tuning ones (the four shortest songs but one long one, and instrumentals of both packages).
REAL_SUBSET_TUNING = (
    "drascula-01",
    "drascula-29",
    "drascula-31",
    "muldjord-armygeddon",
    "drascula-13",
    "drascula-17",
    "drascula-25",
    "drascula-28",
    "sectoid-metal-madness",
)
DETECTOR_VARIANTS = {"probe": DetectorConfig(), "mlp": DetectorConfig(hidden_size=32)}
DETECTOR_ROW = "singing-detector"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("vocal-bench"))
    parser.add_argument("--short-works", type=int, default=30, help="works of ~45 s clips")
    parser.add_argument("--full-works", type=int, default=5, help="works of 3-4 minute songs")
    parser.add_argument("--no-real", action="store_true", help="skip the Debian recordings")
    parser.add_argument(
        "--sets", nargs="+", choices=SETS, default=list(SETS[:3]), help="data sets to score"
    )
    parser.add_argument(
        "--real-subset", action="store_true", help="only REAL_SUBSET_TUNING and the held out"
    )
    parser.add_argument(
        "--separator-weights",
        type=Path,
        help="an HTDemucs .th file: Whisper and Silero hear the vocal stem instead of the mix",
    )
    parser.add_argument(
        "--greedy",
        nargs="*",
        choices=SETS,
        help="evidence from greedy decoding alone (whisper.temperatures=[0.0]): no fallback; "
        "for the sets named, or all",
    )
    parser.add_argument(
        "--train-detector",
        action="store_true",
        help="train the singing detector's variants on detector-train and the real tuning rows",
    )
    parser.add_argument(
        "--ship",
        choices=sorted(DETECTOR_VARIANTS),
        help="with --train-detector: write this variant into the package as the default detector",
    )
    parser.add_argument(
        "--reuse-evidence",
        action="store_true",
        help="use complete evidence outputs as they are, though code or settings changed since",
    )
    parser.add_argument(
        "--cost-tracks", type=int, default=5, help="tracks to time the detector on (5; 0: none)"
    )
    args = parser.parse_args(argv)
    evidence_args, suffix = [], ""  # extraction options of the evidence run
    if args.separator_weights:
        weights = str(args.separator_weights)
        evidence_args = ["--separator", "htdemucs", "--separator-weights", weights, "--keep-stems"]
        suffix = "-htdemucs"
    greedy = set(SETS if args.greedy == [] else args.greedy or ())
    names = [n for n in args.sets if not (args.no_real and n == "real")]
    if args.train_detector and "detector-train" not in names:
        names.append("detector-train")
    args.workdir.mkdir(parents=True, exist_ok=True)
    make_bench = {
        "generated-short": f"--works {args.short_works} --versions-per-work 3 --distractors 10 "
        "--instrumentals 20 --spoken 5 --length short",
        "generated-full": f"--works {args.full_works} --versions-per-work 2 --distractors 2 "
        "--instrumentals 5 --spoken 2 --length full",
        "detector-train": DETECTOR_TRAIN_BENCH,
    }
    sets = {
        name: real_set(args.workdir, args.real_subset)
        if name == "real"
        else generated_set(args.workdir, name, make_bench[name].split())
        for name in names
    }
    loaded: dict[str, list[Track]] = {}
    rows, by_level, cost = [], [], {}
    for name, (catalog, labels) in sets.items():
        greedy_args = ["--set", "whisper.temperatures=[0.0]"] if name in greedy else []
        set_suffix = suffix + ("-greedy" if name in greedy else "")
        features = args.workdir / f"{name}-features{set_suffix}"
        extra = [*evidence_args, *greedy_args]
        wall_s = extract_evidence(catalog, features, extra, args.reuse_evidence)
        stems = features if args.separator_weights else None
        silero = silero_evidence(catalog, args.workdir / f"{name}-silero{set_suffix}.npz", stems)
        loaded[name] = load_tracks(catalog, features, silero, labels)
        cost[name] = _cost(loaded[name], wall_s)
    detectors = dict(DETECTORS)
    if args.train_detector:
        trained = train_detectors(loaded, args.workdir, args.ship)
        detectors |= {f"{DETECTOR_ROW} {variant}": d for variant, d in trained.items()}
    elif all(t.pooled is not None for tracks in loaded.values() for t in tracks):
        detectors[f"{DETECTOR_ROW} (shipped)"] = _probe_detector(_shipped_probabilities())
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
        by_level += _by_level(name, tracks)
    table = [{k: v for k, v in r.items() if k != "tracks"} for r in rows]
    print_table(table)
    print(f"\n{DEFAULT} by voice level against the band:")
    print_table([{k: v for k, v in r.items() if k in LEVEL_COLUMNS} for r in by_level])
    for name, c in cost.items():
        print(f"{name}: {c}")
    detector_cost = None
    if args.cost_tracks:
        first = next(iter(sets.values()))[0]
        detector_cost = time_detector(first, args.cost_tracks)
        print(f"detector cost against the LIVI-only path's encoder: {detector_cost}")
    config = dataclasses.asdict(SingingConfig())
    payload = {
        "rows": rows,
        "default_by_voice_level": by_level,
        "cost": cost,
        "detector_cost": detector_cost,
        "judge_config": config,
        "evidence_args": evidence_args,
        "greedy_sets": sorted(greedy),
    }
    name = "vocal_detection" + suffix + ("-greedy-" + "-".join(sorted(greedy)) if greedy else "")
    path = write_json(name + ("-detector" if args.train_detector else ""), payload)
    print(f"json: {path}")


Probabilities = Callable[[Track], np.ndarray]  # (windows,) probability of "sung"


def _probe_detector(probabilities: Probabilities, threshold: float = 0.5) -> Detector:
    """Windows whose probability exceeds the threshold; None when there is none."""

    def detect(track: Track) -> Spans | None:
        kept = [
            (w["start_s"], w["end_s"])
            for w, p in zip(track.windows, probabilities(track), strict=True)
            if p > threshold
        ]
        return kept or None

    return detect


def _pooled(track: Track) -> np.ndarray:
    if track.pooled is None:
        raise RuntimeError(f"{track.track_id}: no pooled encoder states; re-extract the evidence")
    return track.pooled


def _probabilities(model: Any, track: Track) -> np.ndarray:
    import torch

    with torch.no_grad():
        logits = model.logits(torch.from_numpy(_pooled(track)))
    return torch.sigmoid(logits).numpy()


def _shipped_probabilities() -> Probabilities:
    from pipeline.train.singing import load_detector

    model = load_detector("default")
    return lambda track: _probabilities(model, track)


def train_detectors(
    loaded: dict[str, list[Track]], workdir: Path, ship: str | None
) -> dict[str, Detector]:
    """Each variant of ``DETECTOR_VARIANTS`` trained by ``fit_detector`` (what ``pipeline run
    train singing`` runs, on the windows the shards give the tracks) on the detector-train set
    and the real tuning rows, the default judgement's verdicts as labels. A training track is
    scored by the model of the other fold (two folds by work), any other track by the model
    trained on all. ``ship`` exports that variant's model into the package."""
    from pipeline.train.singing import Windows, export_detector, fit_detector, load_detector

    sets = [name for name in ("detector-train", "real") if name in loaded]
    training = [t for name in sets for t in loaded[name] if not t.held_out]
    works = sorted({t.work for t in training})
    order = np.random.default_rng(0).permutation(len(works))
    fold_of = {works[i]: rank % 2 for rank, i in enumerate(order)}
    windows = Windows(
        np.concatenate([_pooled(t) for t in training]),
        np.concatenate([_judged(t) for t in training]),
        tuple(t.work for t in training for _ in t.windows),
        tuple((t.track_id, w["segment_index"]) for t in training for w in t.windows),
    )
    window_fold = np.array([fold_of[w] for w in windows.works])
    in_training = {t.track_id: fold_of[t.work] for t in training}
    detectors: dict[str, Detector] = {}
    for variant, config in DETECTOR_VARIANTS.items():
        run = workdir / f"detector-{variant}"
        shutil.rmtree(run, ignore_errors=True)  # the labels may have changed: train afresh
        fit_detector(windows, run, config)
        models = {"all": load_detector(str(run))}
        for fold in (0, 1):
            fold_run = workdir / f"detector-{variant}-fold{fold}"
            shutil.rmtree(fold_run, ignore_errors=True)
            fit_detector(windows.subset(window_fold != fold), fold_run, config)
            models[fold] = load_detector(str(fold_run))

        def probabilities(track: Track, models: dict = models) -> np.ndarray:
            fold = in_training.get(track.track_id)
            return _probabilities(models["all" if fold is None else 1 - fold], track)

        detectors[variant] = _probe_detector(probabilities)
        if variant == ship:
            export_detector(run, DEFAULT_DETECTOR)
            print(f"shipped {run} as {DEFAULT_DETECTOR}")
    return detectors


def time_detector(catalog: Path, tracks: int) -> dict[str, Any]:
    """Seconds per track, one thread: decode and segment, the Whisper encoder, and the shipped
    detector on the encoder's states; the detector's share of what the LIVI-only path spends
    before its head (the head is left out, so the share is an upper bound)."""
    from pipeline.config import ExtractConfig
    from pipeline.models.whisper_runtime import load_whisper
    from pipeline.records import Rejected
    from pipeline.retrieval.audio import track_encoder_states
    from pipeline.track import prepare_track
    from pipeline.train.singing import load_detector, window_scores

    config = ExtractConfig()
    runtime = load_whisper(config.whisper, 1)
    detector = load_detector("default")
    prepare_s = encoder_s = detector_s = 0.0
    windows = timed = 0
    for entry in read_catalog(catalog)[:tracks]:
        started = time.perf_counter()
        track = prepare_track(entry, config, 1)
        prepared = time.perf_counter()
        if isinstance(track, Rejected):
            continue
        states = [s.astype(np.float16) for s in track_encoder_states(track, runtime, 8)]
        encoded = time.perf_counter()
        window_scores(detector, states)
        detected = time.perf_counter()
        prepare_s += prepared - started
        encoder_s += encoded - prepared
        detector_s += detected - encoded
        windows += len(states)
        timed += 1
    return {
        "tracks": timed,
        "windows_per_track": round(windows / timed, 2),
        "decode_segment_s_per_track": round(prepare_s / timed, 3),
        "encoder_s_per_track": round(encoder_s / timed, 3),
        "detector_s_per_track": round(detector_s / timed, 4),
        "detector_share": round(detector_s / (prepare_s + encoder_s), 4),
    }


LEVEL_BINS = ((-6.0, -2.0), (-2.0, 2.0), (2.0, 6.0))
LEVEL_COLUMNS = ("data", "voice_db", "sung_kept", "segments_with_voice", "coverage", "tracks")


def _by_level(name: str, tracks: list[Track]) -> list[dict[str, Any]]:
    """The default detector on the voiced tracks of each band of voice levels: the targets
    hold at every level, not only on average."""
    rows = []
    for low, high in LEVEL_BINS:
        members = [t for t in tracks if t.vocal_db is not None and low <= t.vocal_db <= high]
        if members:
            voice_db = f"{low:+.0f}..{high:+.0f}"
            rows.append({"data": name, "voice_db": voice_db, **score(members, DETECTORS[DEFAULT])})
    return rows


def _cost(tracks: list[Track], wall_s: float) -> dict[str, Any]:
    """Windows Whisper judged per track, and how many of them the default kept."""
    rows = [w for t in tracks for w in t.windows]
    verdicts = [
        v for t in tracks for v in judge_track([_transcript(w) for w in t.windows], SingingConfig())
    ]
    unsung = [w for w, v in zip(rows, verdicts, strict=True) if not v.sung]
    sampled = [w for w in unsung if w["temperature"] > 0]
    return {
        "windows_per_track": round(len(rows) / len(tracks), 2),
        "kept_per_track": round((len(rows) - len(unsung)) / len(tracks), 2),
        "unsung_share": _share(len(unsung), len(rows)),
        # Unsung windows whose greedy text failed and were re-decoded by sampling: the costly ones.
        "unsung_resampled_share": _share(len(sampled), len(unsung)),
        "extract_wall_s_per_track_this_run": round(wall_s / len(tracks), 2),
    }


if __name__ == "__main__":
    main()
