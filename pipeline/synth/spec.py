"""What to generate for one track: its catalog identity, performance, band and file."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("sung", "spoken", "instrumental")


@dataclass(frozen=True)
class TrackSpec:
    track_id: str
    work_id: str
    title: str
    language: str  # "" for an instrumental
    kind: str  # sung, spoken or instrumental
    lines: tuple[str, ...]  # lyric or narration lines; () for an instrumental
    voice: str  # espeak-ng voice; "" for an instrumental
    words_per_minute: int
    pitch: int  # espeak-ng base pitch, 0-99
    melody: tuple[int, ...]  # scale degrees the lines are sung on (and a lead plays)
    key_hz: float  # tonic of the band and the melody
    minor: bool
    bpm: int
    vocal_db: float | None  # voice over band over the voiced spans; None: instrumental
    container: str  # file extension
    sample_rate_hz: int
    length: str = "short"  # short (~35-50 s) or full (3-4 minutes)
    guitar: bool = False  # clipped power chords in choruses and breaks
    lead: bool = False  # synth melody: in breaks, or where the voice would be (instrumental)
    reverb_s: float = 0.0  # decay time of the room; 0: dry
    seed: int = 0  # structure and band draws

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.track_id}: kind must be one of {KINDS}, got {self.kind!r}")
        voiced = self.kind != "instrumental"
        if voiced != bool(self.lines) or voiced != (self.vocal_db is not None):
            raise ValueError(
                f"{self.track_id}: a {self.kind} track needs "
                + ("lines and a vocal_db" if voiced else "no lines and no vocal_db")
            )
        if not self.melody:
            raise ValueError(f"{self.track_id}: the melody needs at least one note")

    @property
    def lyrics(self) -> str:
        """All lines as one text, what a transcript of one pass through them would say."""
        return " ".join(self.lines)

    @property
    def artist(self) -> str:
        return f"espeak-ng {self.voice}" if self.voice else "synth"
