"""One track through every stage, without Dask: what the runner maps, and what a REPL can call.

``prepare_track`` is the CPU half (decode, separate, segment). ``extract_tracks`` is every
Whisper step, top to bottom: encode and detect the language (``_encode_and_detect``); decode
greedily in the track's language (``_decode_in_track_language``); fall back to sampled
temperatures where the text fails Whisper's checks and the judgement is not already settled
(``_settled``, ``fall_back``); then per track (``_finish_track``): judge every window
(``judge_track``), the sung windows' dense transcript with its seeks (``_dense``), the decoder
states of each text part (``decoder_states_of``), and the text targets (``embed_text``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.config import ExtractConfig
from pipeline.models.whisper_runtime import WhisperRuntime, load_whisper
from pipeline.records import (
    AudioSegment,
    CatalogEntry,
    Rejected,
    SegmentedTrack,
    SegmentFeatures,
    TrackFeatures,
    Transcript,
)
from pipeline.stages.decode import decode_audio
from pipeline.stages.decoder_states import decoder_states_of
from pipeline.stages.embed_text import clean_transcript, embed_text
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.segment import audio_from, segment_audio
from pipeline.stages.separate import separate_vocals
from pipeline.stages.singing import STAGE as SINGING_STAGE
from pipeline.stages.singing import judge_segment, judge_track, never_sung, no_singing_detail
from pipeline.stages.transcribe import (
    WINDOW_S,
    DenseText,
    decoding_language,
    densify,
    detect_languages,
    fall_back,
    greedy_batch,
    record_detected,
    too_repetitive,
    track_languages,
    whole,
)


def prepare_track(
    entry: CatalogEntry, config: ExtractConfig, threads: int = 0
) -> SegmentedTrack | Rejected:
    """Decode, separate and segment: the CPU half of the work (separation may use the GPU)."""
    audio = decode_audio(entry, config.decode, config.run.allow_protocols)
    if isinstance(audio, Rejected):
        return audio
    vocals = separate_vocals(audio, config, threads)
    if config.separate.feed == "detector":  # Silero hears the stem, Whisper the mixture
        return segment_audio(audio, config.segment, detector_samples=vocals.samples)
    return segment_audio(vocals, config.segment)


def extract_track(
    track: SegmentedTrack | Rejected, config: ExtractConfig, threads: int = 0
) -> TrackFeatures | Rejected:
    """Whisper once per segment (encoder, transcript, decoder states), the singing judgement,
    then the text target. Unsung segments skip the decoder pass and get no text target."""
    return extract_tracks([track], config, threads)[0]


def extract_tracks(
    tracks: Sequence[SegmentedTrack | Rejected], config: ExtractConfig, threads: int = 0
) -> list[TrackFeatures | Rejected]:
    """``extract_track`` for several tracks, whose segments share the encoder's and the greedy
    decoder's batches: a short track alone leaves a batch (a GPU) part empty. On a CPU those
    two sum int8 products exactly, so each segment gets what it gets alone. The sampled
    fallback, the singing judgement, the sung windows' timestamped decoding (``densify``) and
    the teacher-forced decoder pass, whose float rounding moves with the rows beside them
    (or which need the judgement), run per track: a track's files are the same, byte for
    byte, whatever tracks share its task."""
    live = [t for t in tracks if not isinstance(t, Rejected)]
    if not live:  # nothing for Whisper: no model to load
        return [t for t in tracks if isinstance(t, Rejected)]
    runtime = load_whisper(config.whisper, threads)
    encoder_states, detected = _encode_and_detect(live, runtime, config)
    greedy = _decode_in_track_language(live, encoder_states, detected, runtime, config)
    finished: dict[int, TrackFeatures | Rejected] = {}
    first = 0
    for track in live:
        mine = slice(first, first + len(track.segments))
        states = encoder_states[mine]
        settled = _settled(greedy[mine], config)
        transcripts = fall_back(states, greedy[mine], runtime, config.whisper, settled)
        finished[id(track)] = _finish_track(track, states, transcripts, runtime, config)
        first = mine.stop
    return [t if isinstance(t, Rejected) else finished[id(t)] for t in tracks]


def _encode_and_detect(
    tracks: Sequence[SegmentedTrack], runtime: WhisperRuntime, config: ExtractConfig
) -> tuple[list[np.ndarray], list[list[tuple[str, float]]]]:
    """Every window's (L, d) encoder states, the ones LIVI keeps, and its likeliest languages,
    ``whisper.batch_size`` windows a batch."""
    segments = [segment for track in tracks for segment in track.segments]
    size = config.whisper.batch_size
    encoder_states: list[np.ndarray] = []
    detected: list[list[tuple[str, float]]] = []
    for first in range(0, len(segments), size):
        batch = encode(log_mel(segments[first : first + size], runtime), runtime)
        encoder_states += list(batch)
        detected += detect_languages(batch, runtime, config.whisper)
    return encoder_states, detected


def _decode_in_track_language(
    tracks: Sequence[SegmentedTrack],
    encoder_states: list[np.ndarray],
    detected: list[list[tuple[str, float]]],
    runtime: WhisperRuntime,
    config: ExtractConfig,
) -> list[Transcript]:
    """Every window's greedy text: in the language given (``--language``, else the catalog
    row's), else in its own, then again in its track's (a vote of the windows judged sung)
    where that differs. The detected language is recorded either way."""
    given = [config.whisper.language or t.info.entry.language for t in tracks]
    each = [language for track, language in zip(tracks, given, strict=True) for _ in track.segments]
    own = [decoding_language(d, g) for d, g in zip(detected, each, strict=True)]
    greedy = _greedy(encoder_states, own, runtime, config)
    lengths = [len(t.segments) for t in tracks]
    redo = _track_language_redo(lengths, detected, greedy, config, given)
    again = _greedy([encoder_states[i] for i, _ in redo], [v for _, v in redo], runtime, config)
    for (i, _), transcript in zip(redo, again, strict=True):
        greedy[i] = transcript
    return record_detected(greedy, detected)


def _greedy(
    states: Sequence[np.ndarray],
    languages: Sequence[tuple[str, float]],
    runtime: WhisperRuntime,
    config: ExtractConfig,
) -> list[Transcript]:
    """``greedy_batch`` over (L, d) encoder states, ``whisper.batch_size`` at a time."""
    size = config.whisper.batch_size
    greedy: list[Transcript] = []
    for first in range(0, len(states), size):
        batch = np.stack(states[first : first + size])
        greedy += greedy_batch(batch, runtime, config.whisper, languages[first : first + size])
    return greedy


def _track_language_redo(
    lengths: Sequence[int],
    detected: Sequence[Sequence[tuple[str, float]]],
    greedy: Sequence[Transcript],
    config: ExtractConfig,
    given: Sequence[str | None],
) -> list[tuple[int, tuple[str, float]]]:
    """The segments (index, language) to decode again in their track's language: per track
    without a ``given`` language, a vote of the windows judged sung when decoded in their own
    language (``track_languages``). A track with no such window keeps every window's own."""
    redo = []
    first = 0
    for length, language in zip(lengths, given, strict=True):
        mine = range(first, first + length)
        sung = [judge_segment(greedy[i], config.singing).sung for i in mine]
        if language is None and any(sung):
            voted = track_languages(
                detected[mine.start : mine.stop], config.whisper.keep_window_language, sung
            )
            redo += [(i, v) for i, v in zip(mine, voted, strict=True) if v[0] != detected[i][0][0]]
        first = mine.stop
    return redo


def _settled(greedy: Sequence[Transcript], config: ExtractConfig) -> list[bool]:
    """The windows whose greedy text needs no fallback: those judged sung on their own whose
    text does not repeat itself (a sample would not change their verdict, ``densify`` decodes
    them again, and on real songs resampling them changed no word at 3x the time:
    docs/lyrics-transcription.md), and those no text can make sung (the no-speech
    probability, which a sample does not change, is above what the judgement accepts)."""
    if config.whisper.resample_sung or not config.singing.judge:
        return [False] * len(greedy)
    return [
        never_sung(t, config.singing)
        or (judge_segment(t, config.singing).sung and not too_repetitive(t, config.whisper))
        for t in greedy
    ]


def _dense(
    track: SegmentedTrack,
    sung: list[int],
    encoder_states: list[np.ndarray],
    texts: list[DenseText],
    runtime: WhisperRuntime,
    config: ExtractConfig,
) -> list[DenseText]:
    """The sung windows' dense transcripts; a seek reads the track's audio from a window's
    start plus its offset, 30 s of it, into the next window where it reaches."""
    rate = config.decode.sample_rate_hz

    def audio_at(window: int, offset_s: float) -> AudioSegment:
        start_s = track.segments[sung[window]].start_s + offset_s
        return audio_from(track.segments, start_s, WINDOW_S, rate)

    return densify(
        [encoder_states[i] for i in sung],
        [texts[i].transcript for i in sung],
        runtime,
        config.whisper,
        audio_at,
    )


def _finish_track(
    track: SegmentedTrack,
    encoder_states: list[np.ndarray],
    transcripts: list[Transcript],
    runtime: WhisperRuntime,
    config: ExtractConfig,
) -> TrackFeatures | Rejected:
    """The judgement, the sung segments' denser transcripts, the decoder pass of the kept
    segments and the text targets of one track."""
    keep_unsung = config.singing.keep_unsung_tracks
    # The whole track is judged before the decoder pass: a window's neighbours count.
    verdicts = judge_track(transcripts, config.singing)
    sung = [i for i, v in enumerate(verdicts) if v.sung]
    texts = [whole(states, t) for states, t in zip(encoder_states, transcripts, strict=True)]
    for i, dense in zip(
        sung, _dense(track, sung, encoder_states, texts, runtime, config), strict=True
    ):
        texts[i] = dense
    transcripts = [text.transcript for text in texts]
    wanted = [i for i, v in enumerate(verdicts) if v.sung or keep_unsung]
    passes = decoder_states_of([texts[i] for i in wanted], runtime, config.whisper.batch_size)
    decoded = dict(zip(wanted, passes, strict=True))
    features: list[SegmentFeatures] = []
    for i, (segment, transcript, verdict) in enumerate(
        zip(track.segments, transcripts, verdicts, strict=True)
    ):
        states = encoder_states[i]
        dec, agreement = decoded.get(i, (np.zeros((0, states.shape[1]), np.float16), None))
        clean = clean_transcript(transcript.text)
        features.append(
            SegmentFeatures(
                index=segment.index,
                start_s=segment.start_s,
                end_s=segment.end_s,
                encoder_states=states.astype("float16"),
                decoder_states=dec,
                transcript=transcript,
                token_agreement=agreement,
                clean_text=clean,
                text_embedding=embed_text(clean, config.text) if verdict.sung else None,
                singing=verdict.reason,
            )
        )
    unsung_samples = config.singing.keep_unsung_states
    if any(f.sung for f in features) or not features:
        return TrackFeatures(track.info, tuple(features), unsung_samples=unsung_samples)
    detail = no_singing_detail(features)
    if keep_unsung:
        return TrackFeatures(track.info, tuple(features), detail, unsung_samples)
    return Rejected(track.info.entry.track_id, SINGING_STAGE, "no_singing", detail)
