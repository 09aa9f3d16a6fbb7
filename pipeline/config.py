"""Typed configuration: one frozen dataclass per stage under one root, from YAML plus overrides."""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from pipeline.errors import UserError
from pipeline.languages import unknown_language


@dataclass(frozen=True)
class DecodeConfig:
    sample_rate_hz: int = 16_000
    max_duration_s: float = 300.0
    silence_dbfs: float = -60.0  # a track whose RMS is below this is rejected as silent


@dataclass(frozen=True)
class SeparateConfig:
    """Vocal separation before segmentation; see ``pipeline/stages/separate.py``."""

    method: Literal["none", "htdemucs"] = "none"
    weights: str | None = None  # htdemucs: the model's .th file (never downloaded)
    # The weights' sha256; None: the first word of <weights>.sha256 beside them. demucs
    # unpickles the file (weights_only=False), which can run code: one without a matching hash
    # is refused before it is loaded.
    weights_sha256: str | None = None
    # whisper: segmentation and Whisper hear the stem; detector: only Silero (segment.mode=vocal)
    feed: Literal["whisper", "detector"] = "whisper"
    block_s: float = 60.0  # separated at a time: memory is bounded whatever the track's length
    keep_stems: bool = False  # write each vocal stem as stems/<track_id>.flac

    def __post_init__(self) -> None:
        if self.weights_sha256 is not None and not isinstance(self.weights_sha256, str):
            raise ConfigError(
                f"separate.weights_sha256: {self.weights_sha256!r} was read as a number; quote "
                "the hash (YAML '...'), or write it to <weights>.sha256"
            )


@dataclass(frozen=True)
class SegmentConfig:
    # fixed (default): the whole track in 30 s windows, each judged by Whisper (``singing``);
    # vocal: LIVI's rule, Silero VAD on the mixture picks regions and rejects tracks whose
    # mean vocalness is under min_mean_vocalness (it misses singing under a band).
    mode: Literal["vocal", "fixed"] = "fixed"
    segment_s: float = 30.0
    hop_s: float = 30.0  # fixed mode only
    vad_threshold: float = 0.5  # a window is vocal when its probability exceeds this
    merge_gap_s: float = 2.0  # vocal regions closer than this are merged
    min_region_s: float = 1.0  # vocal regions shorter than this are noise
    min_mean_vocalness: float = 0.5  # LIVI rejects tracks below this (vocal mode)


@dataclass(frozen=True)
class SingingConfig:
    """Whisper's judgement of each segment; see ``pipeline/stages/singing.py``."""

    judge: bool = True  # False: every segment counts as sung, hallucinations included
    min_words: int = 4  # different clean words, stock hallucinations removed
    max_no_speech_prob: float = 0.95  # 0.8 dropped sung windows Whisper transcribed well
    min_avg_logprob: float = -2.0  # -1.2 dropped sung windows 5 dB under the band
    # A long text is someone singing even where Whisper doubts its words: hallucinations on
    # music are short (<= 7 different words on every real instrumental window measured).
    long_text_words: int = 12
    long_text_min_avg_logprob: float = -3.5
    # A window beside a sung one continues its verse: one lyric word is enough there if
    # Whisper's scores are not against it. Quiet singing often comes out as one or two words,
    # or as many unsure ones (avg_logprob -3.5 to -4); benchmarks/vocal_detection.py chose these.
    beside_sung_min_words: int = 1
    beside_sung_max_no_speech_prob: float = 0.9
    beside_sung_min_avg_logprob: float = -4.0
    keep_unsung_tracks: bool = False  # True: a track with no sung segment is kept, flagged
    # True: every window judged unsung gets a shard sample too (encoder states and verdict,
    # marked detector_only), to train the singing detector (``pipeline run train singing``);
    # with keep_unsung_tracks the instrumental tracks' windows are there as well.
    keep_unsung_states: bool = False
    # The audio-only path (``--livi-run``, ``embed --audio``) has no transcript to judge: a
    # detector over the encoder states (``pipeline/stages/singing_detector.py``) picks the sung
    # windows. "default": the one shipped with the package; a run folder of ``pipeline run
    # train singing``; "none": every window is embedded and no track is rejected.
    detector: str = "default"
    detector_threshold: float = 0.5  # a window is sung when its probability exceeds this


@dataclass(frozen=True)
class WhisperConfig:
    model_dir: str | None = None  # None: the bundled multilingual base
    device: Literal["cpu", "cuda"] = "cpu"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    batch_size: int = 8
    beam_size: int = 1  # the first decoding; the fallback temperatures sample
    # None: detected per segment, then one per track (a vote of its windows judged sung), or
    # the catalog row's ``language``; a code: every track decoded in it (``--language``). The
    # detected language is recorded beside it either way.
    language: str | None = None
    keep_window_language: float = 0.8  # a segment this sure of another language keeps it
    # Sung windows are decoded again with timestamps and continued from the last one while
    # their text stops continue_margin_s before the window's end, up to continue_rounds times;
    # 0: the judgement's decoding without timestamps is the transcript.
    continue_rounds: int = 3
    continue_margin_s: float = 3.0
    # False: each continuation decodes the same window's encoder states from the last
    # timestamp; True: 30 s of fresh audio from it (a seek, as faster-whisper's loop does).
    # On the five real songs the seek wrote WER 0.544 against 0.541, recall 0.558 against
    # 0.552, at 1.2x the extraction's time (docs/lyrics-transcription.md).
    dense_seek: bool = False
    # The previous-text tokens a continuation is conditioned on (Whisper's limit: 223); the
    # continuations of windows holding at least this many share one decoding.
    continue_context_tokens: int = 64
    # The beam of that timestamped decoding and its continuations (the judgement's decoding
    # keeps beam_size): on real songs beam 5 wrote 0.533 WER against greedy's 0.571.
    dense_beam_size: int = 5
    initial_prompt: str | None = None
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 3.0  # see README: lower ones reject choruses
    log_prob_threshold: float | None = -1.0
    # False: a window the singing judgement calls sung from its greedy text, which does not
    # repeat itself, skips the fallback (its text is decoded again by ``densify``); True: every
    # window under the thresholds falls back, as Whisper does.
    resample_sung: bool = False
    no_speech_threshold: float | None = 0.6
    max_new_tokens: int = 220
    seed: int = 0

    def __post_init__(self) -> None:
        if self.language and (problem := unknown_language(self.language)):
            raise ConfigError(f"whisper.language (--language): {problem}")

    def resolved_compute_type(self) -> str:
        if self.compute_type:
            return self.compute_type
        return "float16" if self.device == "cuda" else "int8"


@dataclass(frozen=True)
class TextEmbedConfig:
    model: Literal["multilingual-e5-small"] = "multilingual-e5-small"
    piece_chars: int = 200
    min_words: int = 4


@dataclass(frozen=True)
class RunConfig:
    """How the job runs; none of it changes the outputs (see ``output_affecting``)."""

    scheduler: str | None = None  # None: a LocalCluster
    n_workers: int | None = None  # LocalCluster only; None: one per core
    retries: int = 2
    strict: bool = False
    # Worker resources each Whisper task claims; None: {"GPU": 1} with --device cuda, else none.
    whisper_resources: dict[str, float] | None = None
    # Tracks per Whisper task, their segments batched together (tokens and states as alone);
    # None: 8 with --device cuda, to fill the device, else 1 (on a CPU the gain is small).
    tracks_per_task: int | None = None
    # fsspec protocols a catalog's audio_path may use besides local paths, file:// and the
    # object stores (s3, gs, gcs, abfs, abfss, az). Empty by default: with http(s) a catalog
    # from outside would make every worker fetch any URL it names, internal addresses too.
    allow_protocols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        items = self.allow_protocols  # a YAML list, or "http,https" from the CLI or --set
        names = tuple(n.strip().lower() for item in items for n in item.split(",") if n.strip())
        for name in names:
            if not re.fullmatch(r"[a-z][a-z0-9+.-]*", name):
                raise ConfigError(f"run.allow_protocols: {name!r} is not a protocol name")
        object.__setattr__(self, "allow_protocols", names)

    def resolved_tracks_per_task(self, device: str) -> int:
        if self.tracks_per_task is not None:
            return max(1, self.tracks_per_task)
        return 8 if device == "cuda" else 1

    def resolved_whisper_resources(self, device: str) -> dict[str, float] | None:
        if self.whisper_resources is not None:
            return self.whisper_resources or None
        return {"GPU": 1} if device == "cuda" else None


@dataclass(frozen=True)
class ExtractConfig:
    input: str = ""
    output: str = ""
    partition_size: int = 16
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    separate: SeparateConfig = field(default_factory=SeparateConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    singing: SingingConfig = field(default_factory=SingingConfig)
    whisper: WhisperConfig = field(default_factory=WhisperConfig)
    text: TextEmbedConfig = field(default_factory=TextEmbedConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # A LIVI run folder: extract only its audio embedding (decode, segment, encoder, LIVI head;
    # no transcription, no decoder, no shards). Empty: every feature.
    livi_run: str = ""
    # The share of tracks whose shard samples keep their encoder states (97% of the bytes;
    # only LIVI reads them), drawn by a hash of the track id, so a re-run or a grown catalog
    # keeps the same tracks. The others keep transcripts, decoder states and text targets;
    # their LIVI embeddings come from ``--livi-run``. 1: every track.
    encoder_states_share: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.encoder_states_share <= 1.0:
            raise ConfigError(
                f"encoder_states_share {self.encoder_states_share}: a share from 0 to 1"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def output_affecting(self) -> dict[str, Any]:
        """The settings that determine the outputs (everything but ``input`` and ``run``)."""
        d = self.to_dict()
        for key in ("input", "output", "run"):
            d.pop(key)
        d["separate"].pop("weights_sha256")  # the manifest's own hash of the file names it
        return d


T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A configuration file or override that does not fit the typed config."""


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {where}{key}; known: {', '.join(fields)}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} must be a mapping")
            value = _build(type(default), value, f"{where}{key}.")
        elif isinstance(default, tuple):
            value = (value,) if isinstance(value, str) else tuple(value)  # one item, not chars
        elif isinstance(default, float) and isinstance(value, int | str) and value is not True:
            try:  # YAML 1.1 reads 3e-4 (no dot) as a string
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where}{key} must be a number, got {value!r}") from None
        kwargs[key] = value
    return cls(**kwargs)


def _parse_set_item(item: str) -> dict[str, Any]:
    """``a.b=value`` as ``{"a": {"b": value}}``, the value read as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. whisper.batch_size=4")
    return _nested(key.strip(), yaml.safe_load(raw))


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    set_items: list[str] | None = None,
) -> ExtractConfig:
    """Defaults < YAML file < ``--set a.b=value`` items < explicit CLI flags (``overrides``)."""
    values: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: config file not found; pass --config path/to/settings.yaml")
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            problem = str(e).replace("\n", " ")
            raise ConfigError(f"{path}: not valid YAML ({problem}); fix the file") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        values = loaded
    for item in set_items or []:
        values = _merge(values, _parse_set_item(item))
    for key, value in (overrides or {}).items():
        if value is not None:
            values = _merge(values, _nested(key, value))
    config = _build(ExtractConfig, values, "")
    if config.separate.feed == "detector" and config.segment.mode != "vocal":
        raise ConfigError(
            "separate.feed=detector gives the vocal stem to Silero only, which runs with "
            "segment.mode=vocal; with segment.mode=fixed Whisper is the detector: use "
            "separate.feed=whisper"
        )
    return config


def add_set_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE``, repeatable, for every command that takes settings."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override any setting, e.g. --set {example}",
    )


def apply_overrides(config: T, set_items: list[str]) -> T:
    """``--set key=value`` items applied to any frozen config; dotted keys reach sections."""
    values = dataclasses.asdict(config)
    for item in set_items:
        values = _merge(values, _parse_set_item(item))
        try:
            config = _build(type(config), values, "")
        except ConfigError as e:
            raise ConfigError(
                f"--set {item!r}: expected key=value with a known key ({e})"
            ) from None
    return config
