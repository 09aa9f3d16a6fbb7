"""Loading separation weights: a real demucs file whose sha256 the user wrote down loads;
anything else stops with the fix, and an untrusted file is never unpickled."""

from pathlib import Path

import pytest
import torch

from pipeline.models.separator import HTDEMUCS_FILE, SeparatorError, load_separator
from tests.separator_fixtures import save_htdemucs, write_sha256


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
    write_sha256(other)
    with pytest.raises(SeparatorError, match=f"not a demucs model file.*{HTDEMUCS_FILE}"):
        load_separator(str(other))


def test_a_model_without_a_vocal_source_is_refused(tmp_path: Path) -> None:
    drums_and_bass = save_htdemucs(tmp_path, sources=["drums", "bass"])
    with pytest.raises(SeparatorError, match="no 'vocals'"):
        load_separator(str(drums_and_bass))


_UNPICKLED = "the file was unpickled"


class _Trap:
    """What a hostile checkpoint holds: unpickling it runs code (here, it raises)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"raise RuntimeError({_UNPICKLED!r})",))


def _trap(folder: Path) -> Path:
    """A PyTorch checkpoint that runs code when loaded with weights_only=False, as demucs does."""
    path = folder / "htdemucs-trap.th"
    torch.save({"klass": _Trap()}, path)
    return path


def test_weights_without_a_sha256_are_refused_before_they_are_unpickled(tmp_path: Path) -> None:
    trap = _trap(tmp_path)
    with pytest.raises(SeparatorError, match="no sha256") as error:
        load_separator(str(trap))
    assert "sha256sum" in str(error.value) and f"{trap}.sha256" in str(error.value)
    assert "\n" not in str(error.value)


def test_weights_whose_sha256_differs_are_refused_before_they_are_unpickled(
    tiny_htdemucs: Path, tmp_path: Path
) -> None:
    trap = _trap(tmp_path)
    trusted = (tiny_htdemucs.parent / f"{tiny_htdemucs.name}.sha256").read_text().strip()
    (tmp_path / f"{trap.name}.sha256").write_text(trusted + "\n")  # another file's hash
    with pytest.raises(SeparatorError, match=f"its sha256 .* is not the trusted {trusted}"):
        load_separator(str(trap))
    with pytest.raises(SeparatorError, match="is not the trusted"):  # the setting wins
        load_separator(str(tiny_htdemucs), "cpu", "0" * 64)
    with pytest.raises(SeparatorError, match=r"separate\.weights_sha256: 'abc' is not a sha256"):
        load_separator(str(tiny_htdemucs), "cpu", "abc")


def test_the_setting_trusts_weights_with_no_sha256_file(
    tiny_htdemucs: Path, tmp_path: Path
) -> None:
    copy = tmp_path / tiny_htdemucs.name
    copy.write_bytes(tiny_htdemucs.read_bytes())
    trusted = (tiny_htdemucs.parent / f"{tiny_htdemucs.name}.sha256").read_text().strip()
    assert "vocals" in load_separator(str(copy), "cpu", trusted.upper()).sources


def test_the_trap_does_run_code_when_unpickled(tmp_path: Path) -> None:
    """What the two tests above guard against is real: loaded, the file runs its code."""
    trap = _trap(tmp_path)
    write_sha256(trap)
    with pytest.raises(SeparatorError, match=_UNPICKLED):
        load_separator(str(trap))
