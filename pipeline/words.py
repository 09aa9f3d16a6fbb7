"""What a word is, in every script: the one rule the singing judgement and the text targets use.

Spaced scripts (Latin, Cyrillic, Greek, Arabic, Hangul, ...) are cut at whitespace, and a word
is a run of letters joined by apostrophes or hyphens: "M-M-M-M" is one word, "1.5%" none.

Unspaced scripts (kana, CJK ideographs, Thai, Lao, Khmer, Burmese) put no space between words,
so they are cut and counted by characters, in one unit for all of them: a word is two
characters, where a character is a letter with the marks that follow it (a Thai or Burmese vowel
or tone mark, a decomposed kana voicing mark, a Khmer or Burmese consonant stacked under it).
Why two: the thresholds that count words (``singing.min_words``, ``singing.long_text_words``,
``text.min_words``) were chosen on spaced words of one or two syllables, and two characters are
one or two syllables in each of these scripts (an ideograph is a syllable, a kana a mora, a Thai
letter with its marks about half a syllable). One character a word would count "クリーム"
(cream) as four words, and would let a short stock phrase pass for a line of lyrics. Why the
marks stay with their letter: a rule of letters alone breaks Thai at every vowel mark, so one
hallucinated Thai phrase counted as several words, and a cut there splits a syllable.
"""

from __future__ import annotations

import re
import sys
import unicodedata

# The Unicode blocks of the scripts written without spaces between words.
UNSPACED_BLOCKS = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar (Burmese)
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x3005, 0x3005),  # 々, the ideographic iteration mark
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x323AF),  # CJK extensions B to H
)


def _class(category: str) -> str:
    """A regex character class body: the code points of the unspaced blocks whose general
    category starts with ``category`` ("L" letters, "M" marks), as ranges."""
    points = [
        p
        for start, end in UNSPACED_BLOCKS
        for p in range(start, min(end, sys.maxunicode) + 1)
        if unicodedata.category(chr(p)).startswith(category)
    ]
    ranges: list[str] = []
    first = previous = points[0]
    for p in [*points[1:], -1]:
        if p != previous + 1:
            ranges.append(chr(first) if first == previous else f"{chr(first)}-{chr(previous)}")
            first = p
        previous = p
    return "".join(ranges)


_LETTER = _class("L")
_MARK = _class("M")
# A Burmese virama or a Khmer coeng stacks the next letter under this one: one character.
_STACK = "\u1039\u17d2"
_CHARACTER = rf"[{_LETTER}](?:[{_MARK}]*[{_STACK}][{_LETTER}])*[{_MARK}]*"
# A cut unit keeps the whitespace before it, so the units of a text join back into it: two
# characters of an unspaced script, or a run of anything else up to whitespace or such a letter.
_UNIT = re.compile(rf"\s*(?:(?:{_CHARACTER}){{1,2}}|[^\s{_LETTER}]+)|\s+\Z")
_UNSPACED_WORD = re.compile(rf"(?:{_CHARACTER}){{1,2}}")
_SPACED_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


def units(text: str) -> list[str]:
    """``text`` cut where a cut may fall: at whitespace, and after every second character of an
    unspaced script. Each unit keeps the whitespace before it: ``"".join(units(t)) == t``."""
    return _UNIT.findall(text)


def words(text: str) -> list[str]:
    """The words of ``text``: each unspaced unit, and the letter runs of the spaced ones."""
    found: list[str] = []
    for unit in units(text):
        unit = unit.strip()
        if _UNSPACED_WORD.fullmatch(unit):
            found.append(unit)
        else:
            found.extend(_SPACED_WORD.findall(unit))
    return found
