"""The singing judgement on hand-built Whisper evidence: deterministic, no model needed."""

import dataclasses

import numpy as np
import pytest

from pipeline.config import SingingConfig
from pipeline.records import SegmentFeatures, Transcript
from pipeline.stages.singing import judge_segment, judge_track, lyric_words, no_singing_detail

CONFIG = SingingConfig()


def _transcript(text: str, no_speech: float = 0.1, logprob: float = -0.4) -> Transcript:
    return Transcript((), (1, 2, 3), text, "en", 0.9, logprob, no_speech, 1.2, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "Thank you.",
        "Thank you. Thank you. Thank you.",
        "I will see you in the next video.",
        "Thanks for watching!",
        "[♪ INTRO MUSIC PLAYING",
        "(upbeat music)",
        "music playing",
        "¡Gracias!",
        "Sous-titrage Société Radio-Canada",
        "Subtitles by the Amara.org community",
        "you",
        "The end.",
        "M-M-M-M",
        "4 クリーム",
        "1.5% 2.0% 2.5%",
        "4x 4x 4x 4x 4x 4x",
        "la la la la la la",
    ],
)
def test_stock_hallucinations_and_loops_are_not_lyrics(text: str) -> None:
    verdict = judge_segment(_transcript(text), CONFIG)
    assert not verdict.sung and verdict.reason in {"few_words", "hallucination"}


def test_a_stock_phrase_among_lyrics_leaves_the_lyrics() -> None:
    text = "Thank you. Light the lantern in the night, I walk alone until the morning."
    assert lyric_words(text)[:3] == ["Light", "the", "lantern"]
    assert judge_segment(_transcript(text), CONFIG).sung


@pytest.mark.parametrize(
    "text",
    [
        "I walk alone until the end of time",
        "I thank you for the love you gave",
        "El río corre hacia el mar, lleva mi corazón",
        "(oh yeah) carry my heart back home to me",
        "川は海へ流れていく",
        "河流奔向大海 带我的心回家",
        "แม่น้ำไหลไปสู่ทะเล พาหัวใจฉันกลับบ้าน",
    ],
)
def test_lyrics_are_sung(text: str) -> None:
    assert judge_segment(_transcript(text), CONFIG).reason == "sung"


@pytest.mark.parametrize(
    ("thai", "english"),
    [
        ("ที่นี่ ไม่รู้ ที่นี่ ไม่รู้", "here I know here I know"),  # 3 different words
        ("แม่น้ำไหลไปสู่ทะเล", "the river runs down into deep water"),  # 7
        (
            "แม่น้ำไหลไปสู่ทะเล พาหัวใจฉันกลับบ้าน",
            "the river runs down into the deep blue sea, carry my tired heart back home",
        ),
    ],
)
@pytest.mark.parametrize(("no_speech", "logprob"), [(0.1, -0.4), (0.1, -2.5), (0.97, -0.4)])
def test_a_thai_text_is_judged_as_a_spaced_one_of_as_many_words(
    thai: str, english: str, no_speech: float, logprob: float
) -> None:
    assert len(set(lyric_words(thai))) == len({w.casefold() for w in lyric_words(english)})
    verdicts = [judge_segment(_transcript(t, no_speech, logprob), CONFIG) for t in (thai, english)]
    assert verdicts[0] == verdicts[1]


def test_scores_decide_when_the_text_looks_like_lyrics() -> None:
    text = "the river runs down to the sea"
    no_speech = _transcript(text, no_speech=CONFIG.max_no_speech_prob + 0.01)
    assert judge_segment(no_speech, CONFIG).reason == "no_speech"
    unlikely = _transcript(text, logprob=CONFIG.min_avg_logprob - 0.01)
    assert judge_segment(unlikely, CONFIG).reason == "low_confidence"
    at_the_limits = _transcript(text, CONFIG.max_no_speech_prob, CONFIG.min_avg_logprob)
    assert judge_segment(at_the_limits, CONFIG).sung


def test_a_long_text_may_be_less_sure_of_its_words() -> None:
    words = " ".join(f"word{chr(97 + i)}" for i in range(CONFIG.long_text_words))
    unsure = CONFIG.min_avg_logprob - 0.5
    assert judge_segment(_transcript(words, logprob=unsure), CONFIG).sung
    short = " ".join(words.split()[:-1])
    assert judge_segment(_transcript(short, logprob=unsure), CONFIG).reason == "low_confidence"
    garbage = _transcript(words, logprob=CONFIG.long_text_min_avg_logprob - 0.01)
    assert judge_segment(garbage, CONFIG).reason == "low_confidence"


def test_a_window_beside_a_sung_one_continues_its_verse() -> None:
    verse = _transcript("I walk alone until the end of time")
    quiet = _transcript("alone", no_speech=0.5, logprob=-2.5)  # 20 s sung, one word heard
    judged = [v.reason for v in judge_track([verse, quiet, quiet, verse], CONFIG)]
    assert judged == ["sung"] * 4
    assert [v.sung for v in judge_track([quiet, quiet, verse], CONFIG)] == [False, True, True]
    # Only windows sung on their own count as neighbours: the rule never chains.
    assert not judge_track([quiet, quiet], CONFIG)[0].sung


@pytest.mark.parametrize(
    "beside",
    [
        _transcript("Thank you.", no_speech=0.5),  # a stock hallucination is no lyric word
        _transcript("alone", no_speech=CONFIG.beside_sung_max_no_speech_prob + 0.01),
        _transcript("alone", logprob=CONFIG.beside_sung_min_avg_logprob - 0.01),
        _transcript("1.5% 2.0% 2.5%"),  # no letters, no words
    ],
)
def test_a_break_beside_a_verse_stays_unsung(beside: Transcript) -> None:
    verse = _transcript("I walk alone until the end of time")
    assert [v.sung for v in judge_track([verse, beside], CONFIG)] == [True, False]


def test_min_words_counts_clean_words() -> None:
    three = _transcript("carry me home")
    assert judge_segment(three, CONFIG).reason == "few_words"
    assert judge_segment(three, dataclasses.replace(CONFIG, min_words=3)).sung


def test_judge_off_keeps_everything() -> None:
    off = dataclasses.replace(CONFIG, judge=False)
    assert judge_segment(_transcript("Thank you.", no_speech=1.0), off).sung


def test_rejection_detail_names_the_evidence_and_the_settings() -> None:
    segment = SegmentFeatures(
        index=0,
        start_s=0.0,
        end_s=30.0,
        encoder_states=np.zeros((4, 2), np.float16),
        decoder_states=np.zeros((0, 2), np.float16),
        transcript=_transcript("Thank you.", no_speech=0.83, logprob=-1.31),
        token_agreement=None,
        clean_text="",
        text_embedding=None,
        singing="few_words",
    )
    detail = no_singing_detail([segment])
    assert "0-30 s few_words (no_speech 0.83, avg_logprob -1.31, 'Thank you.')" in detail
    for setting in ("singing.min_words", "singing.long_text_words", "singing.keep_unsung_tracks"):
        assert setting in detail
