"""Publishing a training run: the link follows the higher validation MAP, swapped atomically."""

import dataclasses
import json
from pathlib import Path

import pytest
from fsspec.core import url_to_fs

from pipeline.io.run_dir import BEST, LAST, RunFolderError, load_checkpoint, read_run_config
from pipeline.train.livi import livi_preset, train_livi
from pipeline.train.publish import PUBLISHED, best_validation_map, publish_if_better
from pipeline.train.wealy import train_wealy, wealy_preset
from tests.feature_fixtures import write_tiny_features
from tests.s3_server import BUCKET, S3Server

# Two validation works of three versions: a MAP that depends on the model.
LIVI = dataclasses.replace(livi_preset("small"), hidden_sizes=(16,), batch_size=5, val_fraction=0.4)
WEALY = dataclasses.replace(
    wealy_preset("small"), d_model=16, ffn_dim=32, output_dim=8, crop=8, works_per_batch=2
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("publish")
    features = write_tiny_features(root / "features", works=5)
    made = {}
    for name, epochs in (("short", 1), ("long", 4)):
        made[name] = root / name
        train_livi(features, made[name], dataclasses.replace(LIVI, epochs=epochs))
    made["wealy"] = root / "wealy"
    train_wealy(features, made["wealy"], dataclasses.replace(WEALY, epochs=1))
    return made


def test_the_best_validation_map_is_the_best_epoch_s(runs: dict[str, Path]) -> None:
    history = load_checkpoint(runs["long"] / LAST)["history"]
    assert len(history) == 4
    assert best_validation_map(runs["long"]) == max(h["val_score"] for h in history)


def test_a_run_replaces_the_published_one_only_when_it_scores_higher(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    link = tmp_path / "models" / "livi"
    first = publish_if_better(runs["short"], link)
    assert first.published and first.incumbent_map is None
    assert link.resolve() == runs["short"].resolve()
    second = publish_if_better(runs["long"], link)
    short, long = best_validation_map(runs["short"]), best_validation_map(runs["long"])
    assert (second.candidate_map, second.incumbent_map) == (long, short)
    assert second.published == (long > short)
    winner = (runs["long"] if long > short else runs["short"]).resolve()
    assert link.resolve() == winner
    again = publish_if_better(winner, link)  # a retried publish task changes nothing
    assert again.published and link.resolve() == winner


def test_a_link_holds_one_kind_of_model(runs: dict[str, Path], tmp_path: Path) -> None:
    link = tmp_path / "livi"
    publish_if_better(runs["short"], link)
    with pytest.raises(RunFolderError, match=r"points to a livi run, .* is a wealy run"):
        publish_if_better(runs["wealy"], link)


def test_a_folder_in_the_way_of_the_link_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "livi").mkdir()
    with pytest.raises(RunFolderError, match=r"is a folder, not a link to a run"):
        publish_if_better(runs["short"], tmp_path / "livi")


def test_in_a_bucket_the_published_run_is_a_copy_of_the_better_one(
    runs: dict[str, Path], s3_env: S3Server
) -> None:
    """No links in a bucket: the better run's files are copied under the model's prefix, with
    ``published.json`` naming it last; it loads like a run folder; a retried publish changes
    nothing, a worse run nothing, another kind is refused."""
    url = f"s3://{BUCKET}/publish"
    fs, base = url_to_fs(url)
    for name in ("short", "long", "wealy"):
        fs.put(str(runs[name]), f"{base}/runs/{name}", recursive=True)
    target = f"{url}/models/livi"
    short, long = best_validation_map(runs["short"]), best_validation_map(runs["long"])
    winner, loser = ("long", "short") if long > short else ("short", "long")
    first = publish_if_better(f"{url}/runs/{winner}", target)
    assert first.published and first.incumbent_map is None
    assert best_validation_map(target) == max(long, short)
    published = json.loads(fs.cat_file(f"{base}/models/livi/{PUBLISHED}"))
    assert published["run"] == f"{url}/runs/{winner}"
    assert fs.cat_file(f"{base}/models/livi/best.pt") == (runs[winner] / BEST).read_bytes()
    assert read_run_config(target) == read_run_config(runs[winner])
    assert publish_if_better(f"{url}/runs/{winner}", target).published  # retried: the same
    worse = publish_if_better(f"{url}/runs/{loser}", target)
    assert not worse.published
    assert json.loads(fs.cat_file(f"{base}/models/livi/{PUBLISHED}"))["run"].endswith(winner)
    with pytest.raises(RunFolderError, match="holds a livi run"):
        publish_if_better(f"{url}/runs/wealy", target)
