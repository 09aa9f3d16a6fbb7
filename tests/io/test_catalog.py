from pathlib import Path

import pytest

from pipeline.io.catalog import CatalogError, read_catalog


def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "catalog.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_relative_paths_resolve_against_the_catalog_folder_and_urls_stay(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "track_id,audio_path,work_id,extra\na,audio/a.wav,w1,ignored\nb,s3://bucket/b.mp3,,\n",
    )
    a, b = read_catalog(path)
    assert a.audio_path == str(tmp_path / "audio" / "a.wav")
    assert (a.work_id, a.line) == ("w1", 2)
    assert b.audio_path == "s3://bucket/b.mp3"
    assert b.work_id is None


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path, '\ufefftrack_id,audio_path,title\r\nt1,a.wav,"Hello, world"\r\n')
    (entry,) = read_catalog(path)
    assert (entry.track_id, entry.title) == ("t1", "Hello, world")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("track_id,path\nt1,a.wav\n", ":1: missing required column(s) audio_path"),
        (
            "track_id,audio_path\nt1,a.wav\nt1,b.wav\n",
            ":3: duplicate track_id 't1' (first on line 2)",
        ),
        ("track_id,audio_path\n,a.wav\n", ":2: empty track_id"),
        ("track_id,audio_path\nt1,a.wav,extra\n", ":2: expected 2 fields, found 3"),
        ("track_id,audio_path\nt1,\n", ":2: empty audio_path"),
        ("", "the catalog is empty"),
        ("track_id,audio_path\n", "no tracks"),
        (
            "track_id,audio_path,language\nt1,a.wav,en\nt2,b.wav,english\n",
            ":3: 't2': language 'english' is not a Whisper language code",
        ),
    ],
)
def test_bad_catalogs_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError) as error:
        read_catalog(_write(tmp_path, text))
    assert message in str(error.value)
    assert str(tmp_path / "catalog.csv") in str(error.value)


def test_a_whisper_language_code_is_kept_and_empty_is_none(tmp_path: Path) -> None:
    path = _write(tmp_path, "track_id,audio_path,language\nt1,a.wav,yue\nt2,b.wav,haw\nt3,c.wav,\n")
    assert [e.language for e in read_catalog(path)] == ["yue", "haw", None]


def test_missing_catalog_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="--input"):
        read_catalog(tmp_path / "nope.csv")
