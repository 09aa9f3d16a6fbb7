"""The word rule on hand-written strings in spaced and unspaced scripts."""

import unicodedata

import pytest

from pipeline.words import units, words

TEXTS = [
    "I walk alone, don't stop M-M-M 1.5%",
    "  El río corre hacia el mar  ",
    "แม่น้ำไหลไปสู่ทะเล พาหัวใจฉันกลับบ้าน",
    "河流奔向大海 带我的心回家",
    "川は海へ流れていく 私の心を家へ運んで",
    "クリーム・ソーダ ๑๒๓",
    "ສະບາຍດີ ເພງ",
    "សួស្តី ចម្រៀង",
    "မင်္ဂလာပါ သီချင်း",
    "hello 你好吗 ok",
]


@pytest.mark.parametrize("text", TEXTS)
def test_units_join_back_into_the_text_and_never_start_with_a_mark(text: str) -> None:
    cut = units(text)
    assert "".join(cut) == text
    starts = [u.strip()[0] for u in cut if u.strip()]
    assert not any(unicodedata.category(c).startswith("M") for c in starts)


def test_spaced_scripts_count_letter_runs() -> None:
    assert words("I walk alone, don't stop M-M-M 1.5%") == [
        "I",
        "walk",
        "alone",
        "don't",
        "stop",
        "M-M-M",
    ]
    assert words("Привет, мир! 안녕하세요 여러분") == ["Привет", "мир", "안녕하세요", "여러분"]


def test_unspaced_scripts_count_two_characters_a_word() -> None:
    assert words("クリーム") == ["クリ", "ーム"]
    assert words("河流奔向大海 带我的心回家") == ["河流", "奔向", "大海", "带我", "的心", "回家"]
    assert words("hello 你好吗 ok") == ["hello", "你好", "吗", "ok"]
    assert words("๑๒๓ ・ 1.5") == []  # digits and punctuation are no words


def test_a_character_keeps_its_marks_and_stacked_consonants() -> None:
    # Thai vowel and tone marks stay with their letter: "here, (I) don't know" is three words
    # (a leading vowel is a letter), not the four that letters alone made of it (ท, น, ไม, ร).
    assert words("ที่นี่ ไม่รู้") == ["ที่นี่", "ไม่", "รู้"]
    assert words("ขอบคุณครับ") == ["ขอ", "บคุ", "ณค", "รับ"]
    assert words("សួស្តី") == ["សួស្តី"]  # Khmer: ស, then ស with ត stacked under it (coeng)
    assert words("မင်္ဂလာပါ") == ["မင်္ဂ", "လာပါ"]  # Burmese: ဂ stacked under င (virama)
