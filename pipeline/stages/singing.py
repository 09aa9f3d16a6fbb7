"""Judge every 30 s segment from Whisper's own evidence: sung lyrics, or nothing to embed.

Silero VAD is a speech detector: under a loud band it hears next to nothing of real singing
(mean probability 0.00-0.01 on real rock songs), so it cannot decide which tracks are sung.
Whisper hears the lyrics, but on instrumental music it invents stock phrases ("Thank you.",
"music playing", "see you in the next video"). So the default cuts the whole track into windows,
transcribes each, and judges here whether the text is lyrics: enough words left once boilerplate
and sound descriptions are gone, no stock hallucination, and Whisper's scores not saying "no
speech". A long text may be less sure of its words: a voice 5 dB under the band often comes out
as many words in the wrong language, a hallucination as a few. A window beside a sung one needs
less: singing comes in verses, and Whisper base often writes one or two words for 20 s of quiet
singing next to a verse it heard well. A segment judged unsung keeps its evidence in the
segments table but gets no text target and no shard sample; a track with no sung segment is
rejected ``no_singing`` (or kept and flagged with ``singing.keep_unsung_tracks``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config import SingingConfig
from pipeline.records import SegmentFeatures, Transcript
from pipeline.stages.embed_text import clean_transcript
from pipeline.words import words

STAGE = "singing"

# Sentences Whisper produces on music without words (seen on real instrumentals and on the
# generated ones). A sentence that is nothing but one of these is dropped before counting.
HALLUCINATIONS = (
    r"(i will |i'll )?see you (in the|on the) next (video|one|episode)",
    r"thanks?( you)?( so much| very much)?( for (watching|listening))?",
    r"gracias|merci( beaucoup)?|danke( schön)?|grazie( mille)?|obrigad[oa]|bedankt",
    r"(please )?(like and )?subscribe( to (my|the|our) channel)?",
    r"(subtitles?|sous-titr\w*|untertitel\w*|subtítulos|sottotitoli|legendas?|amara)\b.*",
    r"(the )?(intro |outro |upbeat |soft |dramatic |gentle |sad |happy )?music( playing| plays)?",
    r"(the )?end",
    r"bye( bye)?",
    r"you",
)
_HALLUCINATION = re.compile(rf"(?:{'|'.join(HALLUCINATIONS)})", re.IGNORECASE | re.UNICODE)
_SENTENCES = re.compile(r"[^.!?¿¡]+", re.UNICODE)


@dataclass(frozen=True)
class SingingVerdict:
    sung: bool
    reason: str  # "sung", or why not: few_words, hallucination, no_speech, low_confidence


def lyric_words(text: str) -> list[str]:
    """The words of a transcript (``pipeline/words.py``: by characters in unspaced scripts) once
    sound descriptions, boiler-plate and sentences that are only a stock hallucination are gone."""
    sentences = (m.group().strip(" ,;:-") for m in _SENTENCES.finditer(text))
    kept = " ".join(s for s in sentences if not _HALLUCINATION.fullmatch(s))
    return words(clean_transcript(kept))


def _distinct(found: list[str]) -> int:
    """How many different words: a loop ("4x 4x 4x", "la la la") says no more than once."""
    return len({w.casefold() for w in found})


def judge_segment(transcript: Transcript, config: SingingConfig) -> SingingVerdict:
    """Whether a segment's transcript is sung lyrics, from its text and Whisper's scores."""
    if not config.judge:
        return SingingVerdict(True, "sung")
    distinct = _distinct(lyric_words(transcript.text))
    if distinct < config.min_words:
        few = _distinct(words(clean_transcript(transcript.text))) < config.min_words
        return SingingVerdict(False, "few_words" if few else "hallucination")
    if transcript.no_speech_prob > config.max_no_speech_prob:
        return SingingVerdict(False, "no_speech")
    long_text = distinct >= config.long_text_words
    floor = config.long_text_min_avg_logprob if long_text else config.min_avg_logprob
    if transcript.avg_logprob < floor:
        return SingingVerdict(False, "low_confidence")
    return SingingVerdict(True, "sung")


def judge_track(transcripts: Sequence[Transcript], config: SingingConfig) -> list[SingingVerdict]:
    """Each window's verdict in track order; a window beside a sung one is sung if it continues
    the verse (see ``_continues_verse``). Only the windows judged on their own count as
    neighbours, so the rule never chains through a break."""
    verdicts = [judge_segment(t, config) for t in transcripts]
    alone = [v.sung for v in verdicts]
    for i, transcript in enumerate(transcripts):
        beside = (i > 0 and alone[i - 1]) or (i + 1 < len(alone) and alone[i + 1])
        if not alone[i] and beside and _continues_verse(transcript, verdicts[i], config):
            verdicts[i] = SingingVerdict(True, "sung")
    return verdicts


def _continues_verse(
    transcript: Transcript, verdict: SingingVerdict, config: SingingConfig
) -> bool:
    """Few or unsure words, none of them a stock hallucination, where Whisper hears speech."""
    return (
        verdict.reason in ("few_words", "low_confidence")
        and _distinct(lyric_words(transcript.text)) >= config.beside_sung_min_words
        and transcript.no_speech_prob <= config.beside_sung_max_no_speech_prob
        and transcript.avg_logprob >= config.beside_sung_min_avg_logprob
    )


def no_singing_detail(segments: Sequence[SegmentFeatures]) -> str:
    """The evidence for rejecting a track: each window's verdict, scores and text."""
    parts = []
    for s in segments:
        t = s.transcript
        text = t.text if len(t.text) <= 40 else t.text[:37] + "..."
        parts.append(
            f"{s.start_s:.0f}-{s.end_s:.0f} s {s.singing} (no_speech {t.no_speech_prob:.2f}, "
            f"avg_logprob {t.avg_logprob:.2f}, {text!r})"
        )
    return (
        f"no segment judged sung in {len(parts)} window(s): {'; '.join(parts)}. A sung "
        "segment has singing.min_words clean words that are not a stock hallucination, "
        "no_speech_prob <= singing.max_no_speech_prob and avg_logprob >= "
        "singing.min_avg_logprob (singing.long_text_min_avg_logprob from "
        "singing.long_text_words words); --set singing.keep_unsung_tracks=true keeps such tracks"
    )


def never_sung(transcript: Transcript, config: SingingConfig) -> bool:
    """Whether no text could make this window sung: Whisper's no-speech probability, which a
    resampled text does not change, is above what every rule accepts. The extraction skips
    the fallback of such a window; the rule lives here so that a new judgement rule cannot
    leave it behind."""
    return transcript.no_speech_prob > max(
        config.max_no_speech_prob, config.beside_sung_max_no_speech_prob
    )
