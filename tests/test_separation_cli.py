"""``--separator htdemucs`` end to end on the example catalog, with a tiny saved model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import soundfile

from pipeline.io.output_dir import file_record
from pipeline.models.separator import HTDEMUCS_FILE
from pipeline.stages.separate import stem_path
from pipeline.synth.example import TRACKS
from tests.conftest import run_extract

RATE = 16_000


def test_htdemucs_runs_the_example_catalog_end_to_end(
    example_dir: Path, tiny_htdemucs: Path, tmp_path: Path
) -> None:
    output = tmp_path / "features"
    separator = ["--separator", "htdemucs", "--separator-weights", str(tiny_htdemucs)]
    # Random weights give no voice: keeping unsung tracks lets every stage see every track.
    extra = [*separator, "--keep-stems", "--set", "singing.keep_unsung_tracks=true"]
    result = run_extract(example_dir / "catalog.csv", output, *extra, "--partition-size", "5")
    assert result.returncode == 0, result.stderr

    tracks = pq.read_table(output / "tracks").to_pylist()
    assert sorted(t["track_id"] for t in tracks) == sorted(t.track_id for t in TRACKS)
    assert all(t["status"] == "ok" for t in tracks), [t["detail"] for t in tracks]
    for track in tracks:
        data, rate = soundfile.read(stem_path(output, track["track_id"]), dtype="float32")
        assert rate == RATE and abs(len(data) - track["duration_s"] * RATE) <= 1

    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["models"]["separator"] == {
        "method": "htdemucs",
        "sha256": file_record(tiny_htdemucs)["sha256"],
    }
    assert manifest["config"]["separate"]["weights"] == str(tiny_htdemucs)
    assert "weights" not in manifest["output_config"]["separate"]  # the hash names the model

    again = run_extract(example_dir / "catalog.csv", output, *extra, "--partition-size", "5")
    assert again.returncode == 0 and "processed   0 track(s)" in again.stdout
    mixture = run_extract(example_dir / "catalog.csv", output, "--partition-size", "5")
    assert mixture.returncode == 2 and "separate.method: 'htdemucs' -> 'none'" in mixture.stderr


def test_missing_or_wrong_weights_stop_before_anything_is_written(
    example_dir: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"not a model")
    for weights, problem in ((tmp_path / "absent.th", "no such file"), (wrong, "not a demucs")):
        output = tmp_path / "features"
        result = run_extract(
            example_dir / "catalog.csv",
            output,
            "--separator",
            "htdemucs",
            "--separator-weights",
            str(weights),
        )
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
        assert HTDEMUCS_FILE in result.stderr and str(weights) in result.stderr
        assert not output.exists()


def test_a_wrong_weights_file_fails_before_torch_or_dask_load(tmp_path: Path) -> None:
    """What keeps that error under a second: nothing heavy is imported before the check."""
    wrong = tmp_path / "htdemucs.th"
    wrong.write_text("<html>404 Not Found</html>")
    args = ["run", "extract", "--input", "catalog.csv", "--output", str(tmp_path / "out")]
    args += ["--separator", "htdemucs", "--separator-weights", str(wrong)]
    script = (
        "import sys; from pipeline.cli import main; code = main(sys.argv[1:]); "
        "print(code, sorted({'torch', 'distributed', 'ctranslate2'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "2 []", result.stdout + result.stderr
    assert "not a demucs model file" in result.stderr and HTDEMUCS_FILE in result.stderr


def test_weights_without_a_trusted_sha256_stop_before_torch_loads(
    tiny_htdemucs: Path, tmp_path: Path
) -> None:
    """A real demucs file, but nothing vouches for it: refused in one line, never unpickled."""
    copy = tmp_path / tiny_htdemucs.name
    copy.write_bytes(tiny_htdemucs.read_bytes())  # no .sha256 beside it
    args = ["run", "extract", "--input", "catalog.csv", "--output", str(tmp_path / "out")]
    args += ["--separator", "htdemucs", "--separator-weights", str(copy)]
    script = (
        "import sys; from pipeline.cli import main; code = main(sys.argv[1:]); "
        "print(code, sorted({'torch', 'distributed', 'ctranslate2'} & set(sys.modules)))"
    )
    for extra, problem in (
        ([], "no sha256 to check it against"),
        (["--set", f"separate.weights_sha256={'ab' * 32}"], "is not the trusted"),
        (["--set", f"separate.weights_sha256={'0' * 64}"], "was read as a number; quote"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", script, *args, *extra], capture_output=True, text=True
        )
        assert result.stdout.strip() == "2 []", result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()


def test_the_stem_for_the_detector_only_needs_the_vocal_segmentation(
    example_dir: Path, tiny_htdemucs: Path, tmp_path: Path
) -> None:
    result = run_extract(
        example_dir / "catalog.csv",
        tmp_path / "features",
        "--separator",
        "htdemucs",
        "--separator-weights",
        str(tiny_htdemucs),
        "--separator-feed",
        "detector",
    )
    assert result.returncode == 2 and "segment.mode=vocal" in result.stderr
    assert not (tmp_path / "features").exists()
