"""Encoder, transcription and decoder states with the real bundled multilingual base."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.tokenizer import Tokenizer
from threadpoolctl import threadpool_limits

from pipeline.config import ExtractConfig, SegmentConfig, SingingConfig, WhisperConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import load_whisper
from pipeline.records import AudioSegment, CatalogEntry, SegmentedTrack, TrackFeatures
from pipeline.stages import transcribe as transcribe_module
from pipeline.stages.decoder_states import decoder_states, decoder_states_of
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.segment import audio_from
from pipeline.stages.transcribe import DenseText, TextPart, compression_ratio, densify, whole
from pipeline.track import extract_track, extract_tracks, prepare_track
from tests.stages.decoding import continue_window, decode_windows

CONFIG = ExtractConfig(segment=SegmentConfig(min_mean_vocalness=0.0))


@pytest.fixture(scope="module")
def segmented(speech_wav: Path) -> SegmentedTrack:
    track = prepare_track(CatalogEntry("t", str(speech_wav), 2), CONFIG)
    assert isinstance(track, SegmentedTrack)
    return track


def test_encoder_states_are_1500_by_512(segmented: SegmentedTrack) -> None:
    runtime = load_whisper(WhisperConfig())
    mels = log_mel(list(segmented.segments), runtime)
    assert mels.shape == (1, 80, 3000)
    states = encode(mels, runtime)
    assert states.shape == (1, 1500, 512) and states.dtype == np.float32


def test_log_mel_does_not_depend_on_the_callers_blas_threads(segmented: SegmentedTrack) -> None:
    runtime = load_whisper(WhisperConfig())
    segments = list(segmented.segments)
    with threadpool_limits(1, user_api="blas"):
        one = log_mel(segments, runtime)
    with threadpool_limits(2, user_api="blas"):
        two = log_mel(segments, runtime)
    np.testing.assert_array_equal(one, two)  # equal bits: int8 encoders amplify one ulp


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_teacher_forced_decoder_reproduces_ctranslate2_greedy_tokens(
    segmented: SegmentedTrack, compute_type: str
) -> None:
    # Decoded without timestamps, as the teacher-forced pass reads the tokens.
    config = WhisperConfig(compute_type=compute_type, continue_rounds=0)
    runtime = load_whisper(config)
    states = encode(log_mel(list(segmented.segments), runtime), runtime)
    transcript = decode_windows(states[0], runtime, config)[0]
    assert transcript.temperature == 0.0
    assert transcript.language == "en"
    assert "river" in transcript.text.lower() and "sea" in transcript.text.lower()
    ((decoder, agreement),) = decoder_states(states, [transcript], runtime)
    assert decoder.shape == (len(transcript.tokens), 512) and decoder.dtype == np.float16
    assert agreement == 1.0  # every greedy token equals the argmax of the teacher-forced pass


def test_the_initial_prompt_reaches_the_decoder(segmented: SegmentedTrack) -> None:
    """``--initial-prompt``'s text, after Whisper's previous-text token, comes before each
    segment's start tokens in what generation is given; the decoding it gives differs from the
    one without, and the teacher-forced pass that reads the same prompt agrees with it."""
    plain = WhisperConfig(continue_rounds=0)
    prompted = dataclasses.replace(plain, initial_prompt="  A folk song about a river. ")
    runtime = load_whisper(plain)
    states = encode(log_mel(list(segmented.segments), runtime), runtime)
    (without,) = transcribe_module.greedy_batch(states, runtime, plain, [("en", 1.0)])
    (with_prompt,) = transcribe_module.greedy_batch(states, runtime, prompted, [("en", 1.0)])
    tokenizer = transcribe_module._tokenizer(runtime, "en")
    words = tokenizer.encode(" A folk song about a river.")
    assert with_prompt.prompt == (tokenizer.sot_prev, *words, *without.prompt)
    assert (with_prompt.tokens, with_prompt.avg_logprob) != (without.tokens, without.avg_logprob)
    ((decoder, agreement),) = decoder_states(states, [with_prompt], runtime)
    assert decoder.shape == (len(with_prompt.tokens), 512) and agreement == 1.0


def test_a_seeks_tokens_get_their_states_from_the_seeks_encoder_output(
    segmented: SegmentedTrack,
) -> None:
    """A window's text in two parts (its own decoding, then a seek's): each part's states are
    computed against the encoder output it was decoded from, and joined in order."""
    config = WhisperConfig(continue_rounds=0)
    runtime = load_whisper(config)
    (segment,) = segmented.segments
    seek = dataclasses.replace(segment, samples=np.roll(segment.samples, 16_000))  # other audio
    own, other = encode(log_mel([segment, seek], runtime), runtime)
    transcript = decode_windows(own, runtime, config)[0]
    head, tail = transcript.tokens[:4], transcript.tokens[4:]
    text = DenseText(transcript, (TextPart(0.0, own, head), TextPart(1.0, other, tail)))
    ((states, agreement),) = decoder_states_of([text], runtime, batch_size=8)
    assert states.shape == (len(transcript.tokens), 512) and agreement is None
    alone = [dataclasses.replace(transcript, tokens=tail)]
    ((expected, _),) = decoder_states(other[None], alone, runtime)
    np.testing.assert_array_equal(states[len(head) :], expected)
    ((single, one_part),) = decoder_states_of([whole(own, transcript)], runtime, batch_size=8)
    assert one_part == 1.0 and single.shape == states.shape


def test_a_window_whose_text_stops_early_seeks_on_the_audio_after_it(
    segmented: SegmentedTrack,
) -> None:
    """The speech ends after 3 s: the dense decoding asks for the audio from its last
    timestamp, encodes it, and the window's tokens are its parts' in order."""
    config = WhisperConfig(dense_seek=True)
    runtime = load_whisper(config)
    (segment,) = segmented.segments
    states = encode(log_mel([segment], runtime), runtime)
    greedy = decode_windows(states, runtime, config)
    asked: list[float] = []

    def audio_at(window: int, offset_s: float) -> AudioSegment:
        asked.append(offset_s)
        return audio_from(segmented.segments, segment.start_s + offset_s, 30.0, 16_000)

    (text,) = densify(list(states), greedy, runtime, config, audio_at)
    assert asked and 0.0 < asked[0] < 27.0
    assert text.parts[0].offset_s == 0.0
    assert text.transcript.tokens == tuple(t for part in text.parts for t in part.tokens)
    assert all(part.encoder_states.shape == (1500, 512) for part in text.parts)


def test_extract_track_keeps_all_features_from_one_pass(segmented: SegmentedTrack) -> None:
    features = extract_track(segmented, CONFIG)
    assert isinstance(features, TrackFeatures)
    (segment,) = features.segments
    assert segment.encoder_states.shape == (1500, 512)
    assert segment.decoder_states.shape[0] == len(segment.transcript.tokens)
    assert segment.text_embedding is not None and segment.text_embedding.shape == (384,)
    assert features.language == "en"


# Kept when unsung: English speech decoded in another language may not read as lyrics.
GIVEN = dataclasses.replace(CONFIG, singing=SingingConfig(keep_unsung_tracks=True))


@pytest.mark.parametrize(
    ("flag", "decoded"), [(None, "fr"), ("de", "de")], ids=["catalog-row", "flag"]
)
def test_the_given_language_decodes_and_the_detected_one_is_recorded(
    speech_wav: Path, flag: str | None, decoded: str
) -> None:
    """The catalog row's language decodes its track; ``--language`` (whisper.language) every
    track, over the row's. Detection still runs and is recorded beside it."""
    config = dataclasses.replace(GIVEN, whisper=WhisperConfig(language=flag))
    track = prepare_track(CatalogEntry("t", str(speech_wav), 2, language="fr"), config)
    features = extract_track(track, config)
    assert isinstance(features, TrackFeatures)
    runtime = load_whisper(config.whisper)
    token = Tokenizer(runtime.tokenizer, True, "transcribe", decoded).language
    for segment in features.segments:
        assert segment.transcript.language == decoded
        assert token in segment.transcript.prompt
        assert segment.transcript.detected_language == "en"
    assert (features.language, features.detected_language) == (decoded, "en")


def test_compression_ratio_flags_repetition() -> None:
    assert compression_ratio("la " * 50) > 5 > compression_ratio("The river runs to the sea.")
    assert compression_ratio("") == 0.0


def test_sampled_fallback_is_reproducible(segmented: SegmentedTrack) -> None:
    config = WhisperConfig(temperatures=(0.6,), compression_ratio_threshold=None)
    runtime = load_whisper(config)
    states = encode(log_mel(list(segmented.segments), runtime), runtime)[0]
    first = decode_windows(states, runtime, config)[0]
    second = decode_windows(states, runtime, config)[0]
    assert first.temperature == 0.6 and first.tokens
    assert first == second
    assert "river" in first.text.lower()
    other_seed = decode_windows(states, runtime, WhisperConfig(temperatures=(0.6,), seed=1))[0]
    assert other_seed.temperature == 0.6


# Every segment falls back and ends on a sampled text, whatever this CPU's greedy pass gives.
ALWAYS_SAMPLED = WhisperConfig(temperatures=(0.2, 0.6), log_prob_threshold=0.0)


@pytest.mark.parametrize("config", [WhisperConfig(), ALWAYS_SAMPLED], ids=["default", "sampled"])
def test_a_batch_decodes_exactly_as_its_segments_alone(
    example_dir: Path, config: WhisperConfig
) -> None:
    """Batching (one generate call over several languages, the fallback temperatures of many
    segments in one sampled pass) changes no token: each segment gets the tokens, text and
    temperature of its decoding alone. Sampled scores may move in the last float digits."""
    entries = [e for e in read_catalog(example_dir / "catalog.csv") if e.work_id == "river"]
    tracks = [prepare_track(e, ExtractConfig()) for e in entries[:3]]
    segments = [s for t in tracks if isinstance(t, SegmentedTrack) for s in t.segments]
    runtime = load_whisper(config)
    states = encode(log_mel(segments, runtime), runtime)  # (B, L, d)
    batched = decode_windows(states, runtime, config)
    alone = [decode_windows(s, runtime, config)[0] for s in states]
    assert len(batched) == len(segments) >= 4
    assert len({t.language for t in alone}) > 1  # prompts differ inside the batch
    if config is ALWAYS_SAMPLED:
        assert all(t.temperature > 0 for t in alone)
    for b, a in zip(batched, alone, strict=True):
        assert (b.tokens, b.text, b.temperature, b.language) == (
            a.tokens,
            a.text,
            a.temperature,
            a.language,
        )
        assert b.avg_logprob == pytest.approx(a.avg_logprob, abs=1e-5)
        assert b.no_speech_prob == a.no_speech_prob


def test_fallback_ends_where_sequential_fallback_ends(example_dir: Path) -> None:
    """All temperatures are sampled at once and a passing one stops the higher ones; each
    segment still gets what trying the temperatures one after the other gives: the first
    that passes, else Whisper's rule over all of them."""
    # Strict: some segments fall back.
    config = WhisperConfig(log_prob_threshold=-0.5)
    entries = [e for e in read_catalog(example_dir / "catalog.csv") if e.work_id == "river"]
    tracks = [prepare_track(e, ExtractConfig()) for e in entries[:3]]
    segments = [s for t in tracks if isinstance(t, SegmentedTrack) for s in t.segments]
    runtime = load_whisper(config)
    states = encode(log_mel(segments, runtime), runtime)
    for got, segment_states in zip(decode_windows(states, runtime, config), states, strict=True):
        tried = []
        for temperature in config.temperatures:
            alone = dataclasses.replace(config, temperatures=(temperature,))
            tried.append(decode_windows(segment_states, runtime, alone)[0])
            if not transcribe_module._needs_fallback(tried[-1], config):
                break
        expected = transcribe_module._choose(tried, config)
        assert (got.tokens, got.temperature) == (expected.tokens, expected.temperature)


def test_a_passing_sample_stops_only_its_segments_higher_temperatures(
    segmented: SegmentedTrack,
) -> None:
    """Once a row passes, no row of its segment at a higher temperature is reported after it;
    every row reported has the tokens it samples alone (other rows never change a row)."""
    config = WhisperConfig()
    runtime = load_whisper(config)
    states = encode(log_mel(list(segmented.segments) * 2, runtime), runtime)  # 2 segments
    temperatures = [0.2, 0.4, 0.6, 0.8, 1.0, 0.2, 1.0]
    rows = [0, 0, 0, 0, 0, 1, 1]
    tokenizer = Tokenizer(runtime.tokenizer, runtime.model.is_multilingual, "transcribe", "en")
    prompt = transcribe_module.prompt_tokens(tokenizer, config)
    reported: list[tuple[int, tuple[int, ...]]] = []

    def sample(rows_: list[int], temps: list[float], passes: bool) -> None:
        def finished(row: int, tokens: tuple[int, ...], _: float) -> bool:
            reported.append((row, tokens))
            return passes

        transcribe_module._sample(
            states,
            rows_,
            [prompt] * len(rows_),
            temps,
            transcribe_module.MAX_LENGTH,
            runtime,
            config.seed,
            finished,
        )

    sample(rows, temperatures, passes=True)
    together = list(reported)
    order = [r for r, _ in together]
    assert len(set(order)) == len(order) and 5 in order  # segment 1's lowest row never stops
    for place, row in enumerate(order):
        after = order[place + 1 :]
        assert not [
            r for r in after if rows[r] == rows[row] and temperatures[r] > temperatures[row]
        ]
    for row, tokens in together:
        reported.clear()
        sample([rows[row]], [temperatures[row]], passes=False)
        assert reported == [(0, tokens)]


def test_continuations_decoded_together_get_what_each_gets_alone(example_dir: Path) -> None:
    """``densify``'s rounds share CTranslate2 decodings across windows; each window's text and
    score equal those of its continuations decoded one at a time."""
    config = WhisperConfig(continue_context_tokens=4)  # short: the rounds share decodings
    entries = read_catalog(example_dir / "catalog.csv")
    tracks = [prepare_track(e, ExtractConfig()) for e in entries[:4]]
    segments = [s for t in tracks if isinstance(t, SegmentedTrack) for s in t.segments][:8]
    runtime = load_whisper(config)
    states = encode(log_mel(segments, runtime), runtime)
    tokenizer = Tokenizer(runtime.tokenizer, runtime.model.is_multilingual, "transcribe", "en")
    opening = list(tokenizer.sot_sequence)
    generate = transcribe_module._generate
    firsts = [
        transcribe_module._decoding(r)
        for r in generate(
            states, [opening] * len(states), runtime, config, beam_size=config.dense_beam_size
        )
    ]
    rounds = [transcribe_module.continuation(f, tokenizer, config) for f in firsts]
    together = transcribe_module._run_rounds(states, rounds, runtime, config)
    continued = 0
    for row, (first, got) in enumerate(zip(firsts, together, strict=True)):
        prompts: list[list[int]] = []

        def decode(prompt: list[int]) -> tuple[list[int], float]:
            prompts.append(prompt)  # noqa: B023 (called within this iteration)
            only = states[row : row + 1]  # noqa: B023
            (result,) = generate(
                only,
                [prompt],
                runtime,
                config,
                beam_size=config.dense_beam_size,
                max_initial_timestamp_index=1500,
            )
            return transcribe_module._decoding(result)

        alone = continue_window(first, decode, tokenizer, config)
        assert got[0] == alone[0] and got[1] == pytest.approx(alone[1], abs=1e-4)
        continued += bool(prompts)
    assert continued >= 2


def test_a_stuck_sample_ends_with_the_tokens_it_has(segmented: SegmentedTrack) -> None:
    """A row that ``stuck`` calls caught in a loop is reported at once, as it stands, and
    never sampled further; the other rows go on."""
    config = WhisperConfig()
    runtime = load_whisper(config)
    states = encode(log_mel(list(segmented.segments)[:1], runtime), runtime)
    tokenizer = Tokenizer(runtime.tokenizer, runtime.model.is_multilingual, "transcribe", "en")
    prompt = transcribe_module.prompt_tokens(tokenizer, config)
    reported: dict[int, tuple[int, ...]] = {}

    def finished(row: int, tokens: tuple[int, ...], _: float) -> bool:
        assert row not in reported
        reported[row] = tokens
        return False

    transcribe_module._sample(
        states,
        [0, 0],
        [prompt, prompt],
        [1.0, 1.0],
        transcribe_module.MAX_LENGTH,
        runtime,
        config.seed,
        finished,
        lambda row, tokens: row == 0 and len(tokens) == 2,
    )
    assert len(reported[0]) == 2 and set(reported) == {0, 1}


@pytest.mark.parametrize("whisper", [WhisperConfig(), ALWAYS_SAMPLED], ids=["default", "sampled"])
def test_tracks_batched_together_get_what_they_get_alone(
    example_dir: Path, whisper: WhisperConfig
) -> None:
    """Segments of several tracks share encoder and greedy batches (what fills a GPU); each
    track keeps the states, transcripts (scores too), verdicts and text targets of its
    extraction alone. Sampled scores would move with other tracks' rows in the same PyTorch
    pass on some CPUs: on an AVX-512 Xeon one of these three tracks' did, before the
    fallback ran per track."""
    entries = read_catalog(example_dir / "catalog.csv")
    tracks = [prepare_track(e, ExtractConfig()) for e in entries[3:6]]
    config = ExtractConfig(whisper=dataclasses.replace(whisper, batch_size=5))
    together = extract_tracks(tracks, config)
    alone = [extract_track(t, config) for t in tracks]
    # More windows than a batch: the third track's two windows fall in different batches.
    assert sum(len(t.segments) for t in tracks if isinstance(t, SegmentedTrack)) == 6
    for t, a in zip(together, alone, strict=True):
        assert type(t) is type(a)
        if not isinstance(a, TrackFeatures):
            assert t == a
            continue
        assert isinstance(t, TrackFeatures) and len(t.segments) == len(a.segments)
        for ts, s in zip(t.segments, a.segments, strict=True):
            assert (ts.transcript, ts.singing, ts.clean_text) == (
                s.transcript,
                s.singing,
                s.clean_text,
            )
            np.testing.assert_array_equal(ts.encoder_states, s.encoder_states)
            np.testing.assert_array_equal(ts.decoder_states, s.decoder_states)
            if s.text_embedding is None:
                assert ts.text_embedding is None
            else:
                np.testing.assert_array_equal(ts.text_embedding, s.text_embedding)
