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
  its thresholds swept.

Metrics. Frames of 0.1 s: precision, recall and F1 of "inside a kept segment" against the
true vocal regions. Tracks: share of sung tracks kept, of instrumental tracks rejected, of
spoken tracks kept. Segments: share of kept segments with at least 1 s of voice, and coverage,
the share of voiced seconds inside a kept segment. Real recordings have track labels only:
sung tracks kept, and instrumentals with no embedded text (no kept segment).

    .venv/bin/python -m benchmarks.vocal_detection --workdir /tmp/vocal-bench

With ``--separator-weights PATH`` (an HTDemucs file), the evidence comes from the vocal stem:
Whisper and Silero hear it instead of the mixture (outputs beside the mixture's, suffixed).
With ``--greedy`` the evidence comes from greedy decoding alone (no temperature fallback).
"""

from __future__ import annotations

import argparse
import dataclasses
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
    for track in tracks:
        kept = detector(track)
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
    "singing.min_words=4",
    "singing.max_no_speech_prob=0.8",
    "singing.min_avg_logprob=-1.2",
    "singing.long_text_words=1000000",
    "singing.long_text_min_avg_logprob=-1.2",
    "singing.beside_sung_min_words=1",
    "singing.beside_sung_max_no_speech_prob=0.8",
    "singing.beside_sung_min_avg_logprob=-3.0",
)


def extract_evidence(catalog: Path, output: Path, extra: list[str]) -> float:
    """Every window's transcript and scores (resumable); returns the wall seconds it took."""
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
    tracks = []
    for entry in read_catalog(catalog):
        tid = entry.track_id
        if tid not in durations:
            raise RuntimeError(f"{tid} was rejected before any detector ran; see {features}")
        kind, regions, held_out, vocal_db = labels[tid]
        ordered = sorted(windows[tid], key=lambda w: w["segment_index"])
        duration = durations[tid]
        tracks.append(Track(tid, kind, duration, regions, held_out, vocal_db, ordered, silero[tid]))
    return tracks


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


def real_set(workdir: Path) -> tuple[Path, dict]:
    """The Debian recordings (fetched once with apt-get download) and their labels."""
    from benchmarks.real_recordings import read_labels, real_catalog

    catalog = real_catalog(workdir / "real-cache")
    return catalog, {lab.track_id: (lab.label, None, lab.held_out, None) for lab in read_labels()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("vocal-bench"))
    parser.add_argument("--short-works", type=int, default=30, help="works of ~45 s clips")
    parser.add_argument("--full-works", type=int, default=5, help="works of 3-4 minute songs")
    parser.add_argument("--no-real", action="store_true", help="skip the Debian recordings")
    parser.add_argument(
        "--separator-weights",
        type=Path,
        help="an HTDemucs .th file: Whisper and Silero hear the vocal stem instead of the mix",
    )
    parser.add_argument(
        "--greedy",
        action="store_true",
        help="evidence from greedy decoding alone (whisper.temperatures=[0.0]): no fallback",
    )
    args = parser.parse_args(argv)
    evidence_args, suffix = [], ""  # extraction options of the evidence run
    if args.separator_weights:
        weights = str(args.separator_weights)
        evidence_args = ["--separator", "htdemucs", "--separator-weights", weights, "--keep-stems"]
        suffix = "-htdemucs"
    if args.greedy:
        evidence_args += ["--set", "whisper.temperatures=[0.0]"]
        suffix += "-greedy"
    args.workdir.mkdir(parents=True, exist_ok=True)
    sets = {
        "generated-short": generated_set(
            args.workdir,
            "generated-short",
            f"--works {args.short_works} --versions-per-work 3 --distractors 10 "
            "--instrumentals 20 --spoken 5 --length short".split(),
        ),
        "generated-full": generated_set(
            args.workdir,
            "generated-full",
            f"--works {args.full_works} --versions-per-work 2 --distractors 2 "
            "--instrumentals 5 --spoken 2 --length full".split(),
        ),
    }
    if not args.no_real:
        sets["real"] = real_set(args.workdir)
    rows, by_level, cost = [], [], {}
    for name, (catalog, labels) in sets.items():
        features = args.workdir / f"{name}-features{suffix}"
        wall_s = extract_evidence(catalog, features, evidence_args)
        stems = features if args.separator_weights else None
        silero = silero_evidence(catalog, args.workdir / f"{name}-silero{suffix}.npz", stems)
        tracks = load_tracks(catalog, features, silero, labels)
        cost[name] = _cost(tracks, wall_s)
        groups = {name: tracks}
        if any(t.held_out for t in tracks):
            groups = {
                f"{name} (tuning)": [t for t in tracks if not t.held_out],
                f"{name} (held out)": [t for t in tracks if t.held_out],
            }
        for group, members in groups.items():
            for detector, detect in DETECTORS.items():
                rows.append({"data": group, "detector": detector, **score(members, detect)})
        by_level += _by_level(name, tracks)
    table = [{k: v for k, v in r.items() if k != "tracks"} for r in rows]
    print_table(table)
    print(f"\n{DEFAULT} by voice level against the band:")
    print_table([{k: v for k, v in r.items() if k in LEVEL_COLUMNS} for r in by_level])
    for name, c in cost.items():
        print(f"{name}: {c}")
    config = dataclasses.asdict(SingingConfig())
    payload = {
        "rows": rows,
        "default_by_voice_level": by_level,
        "cost": cost,
        "judge_config": config,
        "evidence_args": evidence_args,
    }
    path = write_json(f"vocal_detection{suffix}", payload)
    print(f"json: {path}")


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
