import json
from pathlib import Path

import pytest

from pipeline.io.run_dir import (
    RunConfigMismatchError,
    RunSplit,
    read_split,
    read_train_works,
    write_split,
)

pytestmark = pytest.mark.timeout(30)


def test_split_is_written_then_read_with_its_test_works(tmp_path: Path) -> None:
    write_split(tmp_path, frozenset({"b", "a"}), frozenset({"c"}), frozenset({"d"}))
    document = json.loads((tmp_path / "split.json").read_text())
    assert document == {"train_works": ["a", "b"], "val_works": ["c"], "test_works": ["d"]}
    expected = RunSplit(frozenset({"a", "b"}), frozenset({"c"}), frozenset({"d"}))
    assert read_split(tmp_path) == expected and read_train_works(tmp_path) == {"a", "b"}
    write_split(tmp_path, frozenset({"a", "b"}), frozenset({"c"}), frozenset({"d"}))  # a resume


def test_a_resume_that_would_split_other_works_is_refused(tmp_path: Path) -> None:
    """Its new test works could be works it already trained on."""
    write_split(tmp_path, frozenset({"a", "b"}), frozenset({"c"}), frozenset())
    with pytest.raises(RunConfigMismatchError, match="splits other works"):
        write_split(tmp_path, frozenset({"a"}), frozenset({"c"}), frozenset({"b"}))
    (tmp_path / "split.json").write_text('{"train_works": ["a", "b"], "val_works": ["c"]}')
    assert read_split(tmp_path).test is None  # written before the test split
    with pytest.raises(RunConfigMismatchError, match="test works unrecorded there"):
        write_split(tmp_path, frozenset({"a", "b"}), frozenset({"c"}), frozenset())
