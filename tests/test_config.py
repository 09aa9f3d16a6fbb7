from pathlib import Path

import pytest

from pipeline.config import ConfigError, ExtractConfig, load_config


def test_yaml_then_set_then_flags(tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "whisper:\n  batch_size: 2\n  temperatures: [0.0, 0.5]\npartition_size: 4\n"
    )
    config = load_config(
        yaml_file, {"partition_size": 8, "whisper.device": None}, ["segment.mode=fixed"]
    )
    assert config.whisper.batch_size == 2
    assert config.whisper.temperatures == (0.0, 0.5)
    assert config.segment.mode == "fixed"
    assert config.partition_size == 8
    assert config.whisper.device == "cpu"


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ConfigError, match=r"whisper\.beam"):
        load_config(None, None, ["whisper.beam=5"])


def test_run_settings_do_not_affect_outputs() -> None:
    a = load_config(None, {"run.n_workers": 1, "input": "a.csv"})
    b = load_config(None, {"run.n_workers": 4, "input": "b.csv"})
    assert a.output_affecting() == b.output_affecting()
    assert a.output_affecting() != ExtractConfig(partition_size=3).output_affecting()
    assert (
        load_config(None, {"whisper.compute_type": "float32"}).whisper.resolved_compute_type()
        == "float32"
    )
    assert ExtractConfig().whisper.resolved_compute_type() == "int8"


def test_allowed_protocols_read_from_a_flag_a_set_item_or_a_yaml_list(tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("run:\n  allow_protocols: [http, HTTPS]\n")
    expected = ("http", "https")
    assert load_config(yaml_file).run.allow_protocols == expected
    assert load_config(None, {"run.allow_protocols": "http,https"}).run.allow_protocols == expected
    assert load_config(None, None, ["run.allow_protocols=http, https"]).run.allow_protocols == (
        expected
    )
    assert ExtractConfig().run.allow_protocols == ()  # local files and object stores only
    with pytest.raises(ConfigError, match="'ht tp' is not a protocol name"):
        load_config(None, {"run.allow_protocols": "ht tp"})
    allowed = load_config(None, {"run.allow_protocols": "http"})
    assert allowed.to_dict()["run"]["allow_protocols"] == ("http",)  # in the resolved config


def test_the_weights_hash_setting_does_not_change_the_outputs() -> None:
    """The manifest records the weights file's own sha256; the setting only vouches for it."""
    given = load_config(None, {"separate.weights_sha256": "ab" * 32})
    assert given.separate.weights_sha256 == "ab" * 32
    assert given.output_affecting() == ExtractConfig().output_affecting()


def test_language_is_a_whisper_code() -> None:
    assert load_config(None, {"whisper.language": "haw"}).whisper.language == "haw"
    with pytest.raises(ConfigError, match=r"whisper\.language \(--language\): language 'eng'"):
        load_config(None, {"whisper.language": "eng"})
