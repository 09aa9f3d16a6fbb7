"""The committed labels of the real-recordings set: well formed, without the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.real_recordings import COLUMNS, LABELS_CSV, read_labels


def test_labels_are_well_formed_and_cover_every_kind_with_a_held_out_part() -> None:
    tracks = read_labels()
    labels = {t.label for t in tracks}
    assert {"sung", "instrumental"} <= labels
    for label in labels:
        group = [t for t in tracks if t.label == label]
        assert any(t.held_out for t in group) and not all(t.held_out for t in group), label
    assert all(t.duration_s > 0 and t.paths[0].startswith("/usr/share/") for t in tracks)


def test_a_malformed_row_is_named(tmp_path: Path) -> None:
    rows = LABELS_CSV.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "labels.csv"
    broken.write_text("\n".join([rows[0], rows[1].replace(",no,", ",maybe,")]) + "\n")
    with pytest.raises(ValueError, match=rf"{broken}:2: held_out must be yes or no"):
        read_labels(broken)
    broken.write_text(",".join(reversed(COLUMNS)) + "\n")
    with pytest.raises(ValueError, match="columns must be"):
        read_labels(broken)
