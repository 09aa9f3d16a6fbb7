"""The language codes Whisper decodes in: what a catalog's ``language`` and ``--language`` give.

A constant here rather than faster-whisper's list, so the catalog reader and the config check a
code without importing Whisper's runtime; tests/test_languages.py keeps the two equal. A model
may know fewer (Whisper before large-v3 has no ``yue``): ``whisper_runtime.model_languages``.
"""

from __future__ import annotations

WHISPER_LANGUAGES = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw "
    "he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt "
    "my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl "
    "tr tt uk ur uz vi yi yo zh yue".split()
)


def unknown_language(code: str) -> str | None:
    """Why ``code`` is no Whisper language code, with the fix; None when it is one."""
    if code in WHISPER_LANGUAGES:
        return None
    hint = (
        f" (Whisper's codes are lower case: {code.lower()})"
        if code.lower() in WHISPER_LANGUAGES
        else ""
    )
    return (
        f"language {code!r} is not a Whisper language code{hint}; give an ISO 639-1 code Whisper "
        "knows (en, fr, es, ja, haw, yue, ...) or leave it empty to detect the language"
    )
