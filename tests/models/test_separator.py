"""Loading separation weights: a real demucs file loads, anything else stops with the fix."""

from pathlib import Path

import pytest
import torch

from pipeline.models.separator import HTDEMUCS_FILE, SeparatorError, load_separator
from tests.separator_fixtures import save_htdemucs


def test_a_model_saved_the_way_demucs_saves_loads(tiny_htdemucs: Path) -> None:
    model = load_separator(str(tiny_htdemucs))
    assert "vocals" in model.sources
    assert (model.samplerate, model.audio_channels) == (44_100, 2)
    assert not model.training
    assert load_separator(str(tiny_htdemucs)) is model  # once per process


@pytest.mark.parametrize("weights", [None, "", "/nonexistent/htdemucs.th"])
def test_missing_weights_name_the_file_expected(weights: str | None) -> None:
    with pytest.raises(SeparatorError, match=HTDEMUCS_FILE):
        load_separator(weights)


@pytest.mark.parametrize("content", [b"", b"not a model\n", b'{"model_type": "whisper"}'])
def test_a_file_that_is_not_a_demucs_model_is_refused(tmp_path: Path, content: bytes) -> None:
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(content)
    with pytest.raises(SeparatorError, match=f"not a demucs model file.*{HTDEMUCS_FILE}"):
        load_separator(str(wrong))


def test_a_checkpoint_of_something_else_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.th"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(SeparatorError, match=f"not a demucs model file.*{HTDEMUCS_FILE}"):
        load_separator(str(other))


def test_a_model_without_a_vocal_source_is_refused(tmp_path: Path) -> None:
    drums_and_bass = save_htdemucs(tmp_path, sources=["drums", "bass"])
    with pytest.raises(SeparatorError, match="no 'vocals'"):
        load_separator(str(drums_and_bass))
