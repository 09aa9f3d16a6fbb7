"""Run the extraction on a Dask cluster: partitions of the catalog, resumable.

Per track, a CPU task (decode, separate, segment) feeds a Whisper task (which asks for a
``GPU`` resource with ``--device cuda``); per partition, a write task commits the outputs.
Only a bounded window of partitions is in flight, so a million-track catalog does not put a
million futures on the scheduler. Completed partitions (valid markers) are skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import dask
import torch
from distributed import Client, Future, LocalCluster, as_completed

import pipeline
from pipeline.config import ConfigError, ExtractConfig, RunConfig
from pipeline.io.catalog import CatalogError, read_catalog
from pipeline.io.discover import Discovery, commit_catalog, discover_audio, require_audio
from pipeline.io.object_store import is_url, output_dir_for
from pipeline.io.output_dir import EMBEDDINGS, INPUT_SKIPPED, OutputDir, file_record
from pipeline.io.schemas import schema_version
from pipeline.models.livi import livi_spec
from pipeline.models.separator import load_separator, weights_path, weights_sha256
from pipeline.models.singing_detector import detector_spec
from pipeline.models.weights_spec import WeightsSpec
from pipeline.models.whisper_runtime import model_languages, model_sha256, resolve_model_dir
from pipeline.partition import (
    merge_embeddings,
    prune_partition,
    write_embedding_partition,
    write_groups,
    write_partition,
)
from pipeline.plan import Plan, make_plan, plan_document, track_fingerprint
from pipeline.records import CatalogEntry
from pipeline.report import write_report_at
from pipeline.retries import retry_counts, start_counting, stop_counting
from pipeline.stages.embed_text import TEXT_ENCODER
from pipeline.track import extract_tracks, prepare_track
from pipeline.track_embedding import embed_tracks_audio
from pipeline.worker_logs import JsonWorkerLogs
from pipeline.worker_memory import then_release, worker_malloc_environ

log = logging.getLogger(__name__)
AudioOnlyWeights = tuple[WeightsSpec, WeightsSpec | None]  # --livi-run: the head, the detector


class Progress(Protocol):
    def start(self, total_tracks: int, done_tracks: int) -> None: ...

    def advance(self, tracks: int) -> None: ...


@dataclass
class RunSummary:
    tracks: int = 0
    ok: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)  # ok tracks kept with a flag
    resumed_partitions: int = 0
    failed_partitions: dict[int, str] = field(default_factory=dict)
    segments: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    workers_lost: int = 0  # Dask re-ran their tasks elsewhere
    task_retries: Counter[str] = field(default_factory=Counter)  # erred runs Dask re-ran, by task
    processed: int = 0  # tracks that went through the stages in this run
    completed_partitions: int = 0  # in this run
    input_skipped: Counter[str] = field(default_factory=Counter)  # --input DIR: files by reason

    def add(self, marker: dict[str, Any]) -> None:
        self.tracks += marker["tracks"]
        self.ok += marker["ok"]
        self.rejected.update(marker["rejected"])
        self.flagged.update(marker.get("flagged", {}))
        self.segments += marker["segments"]
        self.audio_s += marker["audio_s"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracks": self.tracks,
            "ok": self.ok,
            "rejected": dict(sorted(self.rejected.items())),
            "flagged": dict(sorted(self.flagged.items())),
            "resumed_partitions": self.resumed_partitions,
            "failed_partitions": {str(k): v for k, v in self.failed_partitions.items()},
            "segments": self.segments,
            "processed": self.processed,
            "workers_lost": self.workers_lost,
            "task_retries": dict(sorted(self.task_retries.items())),
            "audio_s": round(self.audio_s, 3),
            "wall_s": round(self.wall_s, 3),
            "audio_s_per_wall_s": round(self.audio_s / self.wall_s, 3) if self.wall_s else None,
            "input_skipped": dict(sorted(self.input_skipped.items())),
        }


NO_SINGING_REASONS = ("no_singing", "low_vocalness", "no_vocals")
NO_SINGING_WARN_SHARE = 0.1


def no_singing_warning(summary: RunSummary, config: ExtractConfig) -> str | None:
    """A warning when more than 10% of the tracks were rejected for having no singing."""
    rejected = sum(summary.rejected[r] for r in NO_SINGING_REASONS)
    if not summary.tracks or rejected <= NO_SINGING_WARN_SHARE * summary.tracks:
        return None
    if config.segment.mode == "vocal":
        fix = (
            "segment.mode=vocal is LIVI's Silero rule, which misses singing under a band: "
            "drop --set segment.mode=vocal (the default lets Whisper judge every window) or "
            "lower segment.min_mean_vocalness"
        )
    else:
        fix = (
            "check a few of them in tracks/ (detail has Whisper's evidence); "
            "--set singing.keep_unsung_tracks=true keeps them flagged"
        )
    return (
        f"warning: {rejected} of {summary.tracks} tracks ({rejected / summary.tracks:.0%}) "
        f"were rejected for having no singing; {fix}"
    )


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _run_record(
    summary: RunSummary, run_id: str | None, started_at: str, status: str
) -> dict[str, Any]:
    """What this run did, kept in the manifest beside the earlier runs on the same folder."""
    return {
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": utc_now(),
        "status": status,
        "wall_s": round(summary.wall_s, 3),
        "processed": summary.processed,
        "completed_partitions": summary.completed_partitions,
        "failed_partitions": {str(k): v for k, v in summary.failed_partitions.items()},
        "workers_lost": summary.workers_lost,
        "task_retries": dict(sorted(summary.task_retries.items())),
    }


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def manifest_header(
    config: ExtractConfig, weights: AudioOnlyWeights | None = None
) -> dict[str, Any]:
    """What identifies these outputs: settings, model fingerprints, schemas and code."""
    catalog = Path(config.input)
    model_dir = resolve_model_dir(config.whisper)
    output_config = config.output_affecting()
    output_config["whisper"].pop("model_dir")  # the model's hash identifies it, not its path
    output_config["separate"].pop("weights")  # likewise
    resolved = config.to_dict()
    resolved["whisper"]["model_dir"] = str(model_dir)
    models: dict[str, Any] = {"whisper": {"sha256": model_sha256(model_dir)}}
    if config.separate.method != "none":
        weights = weights_path(config.separate.weights)
        resolved["separate"]["weights"] = str(weights)
        models["separator"] = {"method": config.separate.method, "sha256": weights_sha256(weights)}
    tables = ("tracks", "segments", "shard_sample")
    output_config.pop("livi_run")  # the checkpoint's hash identifies the head
    if output_config["encoder_states_share"] == 1.0:  # the default: outputs made before it
        output_config.pop("encoder_states_share")  # was a setting resume as they are
    if config.livi_run:
        livi, detector = weights or audio_only_weights(config)
        models["livi"] = {"checkpoint": livi.checkpoint} | livi.record()
        if not is_url(config.livi_run):
            resolved["livi_run"] = str(Path(config.livi_run).absolute())
        if detector is not None:  # the weights identify the detector, not singing.detector
            models["singing_detector"] = detector.record()
        tables = ("tracks", "embeddings")
    return {
        "schema_versions": {n: schema_version(n) for n in tables},
        "output_config": output_config,
        "models": models | {"text_encoder": TEXT_ENCODER},
        "config": resolved,
        "code_version": {"pipeline": pipeline.__version__, "git_commit": _git_commit()},
        # A folder's catalog is written into the output once the output is found compatible.
        "catalog": {"path": str(catalog.absolute())}
        | (file_record(catalog) if catalog.is_file() else {}),
    }


@contextmanager
def dask_client(
    run: RunConfig, gpu: bool, worker_logs: JsonWorkerLogs | None = None
) -> Iterator[tuple[Client, int]]:
    """A client and the CPU threads each worker task may use (0: the worker decides);
    ``worker_logs`` sets up the logging of the LocalCluster's workers, never a remote one's."""
    if run.scheduler:
        with Client(run.scheduler) as client:
            yield client, 0
        return
    cores = os.cpu_count() or 1
    # On one machine, one GPU worker per device: more would each load Whisper onto it.
    n_workers = run.n_workers or (torch.cuda.device_count() if gpu else cores)
    if n_workers < 1:
        raise ConfigError(
            "--device cuda, but this machine sees no CUDA device; attach GPU workers with "
            "--scheduler tcp://host:port or use --device cpu"
        )
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": worker_malloc_environ()}),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            resources={"GPU": 1} if gpu else None,
        ) as cluster,
        Client(cluster) as client,
    ):
        if worker_logs is not None:
            client.register_plugin(worker_logs)
        yield client, max(1, cores // n_workers)


def _token(config: ExtractConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


def _reuse_completed(out: OutputDir, plan: Plan) -> dict[int, dict[str, Any]]:
    """Markers of the planned partitions already done; prune or delete what the plan dropped."""
    markers: dict[int, dict[str, Any]] = {}
    for index in out.existing_partitions():
        if index not in plan:
            out.remove_partition(index)
            log.info("partition %d removed: its tracks left or changed in the catalog", index)
            continue
        marker = out.completed_marker(index)
        planned = [e.track_id for e in plan[index]]
        if marker is not None and marker["track_ids"] != planned:
            if set(planned) <= set(marker["track_ids"]):
                marker = prune_partition(index, planned, out)
                log.info("partition %d rewritten without tracks that left or changed", index)
            else:
                marker = None
        if marker is None:
            out.remove(out.marker_rel(index))  # it will be recomputed
        else:
            markers[index] = marker
    return markers


def check_separator(config: ExtractConfig) -> None:
    """Load the separation weights once here, so a wrong file stops the run before any work."""
    if config.separate.method != "none":
        load_separator(config.separate.weights, "cpu", config.separate.weights_sha256)


def audio_only_weights(config: ExtractConfig) -> AudioOnlyWeights:
    """The LIVI run and the singing detector of ``--livi-run``, checked before any work."""
    return livi_spec(config.livi_run), detector_spec(config.singing.detector)


def check_languages(entries: list[CatalogEntry], config: ExtractConfig) -> None:
    """Every language given (``--language``, catalog rows) is one this Whisper model decodes
    in, before any work: ``yue`` before large-v3 would fail every partition it is in."""
    if config.livi_run:  # no decoding
        return
    known = model_languages(resolve_model_dir(config.whisper))
    fix = "give a code this model knows (Cantonese before large-v3: zh), or none to detect"
    if config.whisper.language:
        if config.whisper.language not in known:
            raise ConfigError(
                f"--language {config.whisper.language}: this Whisper model has no such "
                f"language; {fix}"
            )
        return
    for e in entries:
        if e.language and e.language not in known:
            raise CatalogError(
                f"{config.input}:{e.line}: {e.track_id!r}: this Whisper model has no language "
                f"{e.language!r}; {fix}"
            )


def run_extract(
    config: ExtractConfig,
    overwrite: bool = False,
    progress: Progress | None = None,
    run_id: str | None = None,
    log_format: str = "text",
) -> RunSummary:
    """Extract every catalog track into ``config.output``; resume what a previous run did.

    ``run_id`` names this run in the manifest; ``log_format`` json makes the workers of the
    LocalCluster it starts log JSON lines with that id."""
    started, started_at = time.monotonic(), utc_now()
    check_separator(config)
    folder = _discover_input(config)
    entries = read_catalog(Path(config.input)) if folder is None else []
    check_languages(entries, config)
    weights = audio_only_weights(config) if config.livi_run else None  # checked once, hashed once
    out = output_dir_for(config.output, embeddings_only=bool(config.livi_run))
    summary = RunSummary()
    with out.lock(run_id):
        header = manifest_header(config, weights)
        out.check_compatible(header, overwrite)
        if folder is not None:  # its catalog is kept with the outputs, for the next run
            header["catalog"], entries = commit_catalog(folder, out)
            summary.input_skipped.update(folder.skipped_counts())
        if removed := out.remove_leftovers():
            log.info("removed %d temporary file(s) left by an interrupted run", removed)
        earlier_runs = (out.read_manifest() or {}).get("runs", [])
        out.write_manifest(header | {"status": "running", "partitions": [], "runs": earlier_runs})
        out.remove(EMBEDDINGS)  # rewritten once every partition is
        fingerprints = {
            e.track_id: track_fingerprint(e, config.run.allow_protocols) for e in entries
        }
        partitions = make_plan(entries, fingerprints, out.read_plan(), config.partition_size)
        out.write_plan(plan_document(partitions, fingerprints))
        markers = _reuse_completed(out, partitions)
        for marker in markers.values():
            summary.add(marker)
        summary.resumed_partitions = len(markers)
        pending = [i for i in sorted(partitions) if i not in markers]
        log.info(
            "%d tracks in %d partitions; %d already complete",
            len(entries),
            len(partitions),
            len(markers),
        )
        if progress:
            progress.start(len(entries), summary.tracks)
        if pending:
            worker_logs = JsonWorkerLogs(run_id) if log_format == "json" else None
            _run_pending(
                config,
                out,
                partitions,
                fingerprints,
                pending,
                markers,
                summary,
                progress,
                worker_logs,
                weights,
            )
        out.remove_leftovers()  # e.g. from a worker killed while writing
        status = "incomplete" if summary.failed_partitions else "complete"
        if out.embeddings_only and status == "complete":
            merge_embeddings(out, sorted(markers))
        summary.wall_s = time.monotonic() - started
        out.write_manifest(
            header
            | {
                "status": status,
                "partitions": [markers[i] for i in sorted(markers)],
                "summary": summary.to_dict(),
                "runs": [*earlier_runs, _run_record(summary, run_id, started_at, status)],
            }
        )
        write_report_at(out.location)
    return summary


def _discover_input(config: ExtractConfig) -> Discovery | None:
    """The audio files of an ``--input`` folder (None for a catalog CSV), before any work."""
    if "://" in config.input or not Path(config.input).expanduser().is_dir():
        return None
    folder = discover_audio(Path(config.input), exclude=(Path(config.output),))
    require_audio(folder)
    log.info(
        "%s: %d audio files; skipped %d (%s), listed in %s",
        folder.root,
        len(folder.found),
        len(folder.skipped),
        folder.describe_skipped(),
        INPUT_SKIPPED,
    )
    return folder


def _run_pending(
    config: ExtractConfig,
    out: OutputDir,
    partitions: Plan,
    fingerprints: dict[str, str],
    pending: list[int],
    markers: dict[int, dict[str, Any]],
    summary: RunSummary,
    progress: Progress | None,
    worker_logs: JsonWorkerLogs | None,
    weights: AudioOnlyWeights | None,
) -> None:
    resources = config.run.resolved_whisper_resources(config.whisper.device)
    separating = config.separate.method != "none"
    if weights is not None:
        livi, detector = weights
        whisper_stage = then_release(partial(embed_tracks_audio, livi=livi, detector=detector))
    else:
        whisper_stage = then_release(extract_tracks)
    group_size = config.run.resolved_tracks_per_task(config.whisper.device)
    write = (
        write_embedding_partition
        if out.embeddings_only
        else partial(write_partition, encoder_states_share=config.encoder_states_share)
    )
    token = _token(config)
    retries = config.run.retries
    gpu = config.whisper.device == "cuda"
    with dask_client(config.run, gpu, worker_logs) as (client, threads):
        start_counting(client, token)
        seen_workers = set(client.scheduler_info()["workers"])
        window = 2 * max(1, len(seen_workers))

        def count_lost_workers() -> None:
            current = set(client.scheduler_info()["workers"])
            seen_workers.update(current)
            summary.workers_lost = len(seen_workers - current)

        queue = iter(pending)
        writes: dict[Future, int] = {}
        group_tracks: dict[Future, int] = {}  # Whisper task -> its tracks
        completed = as_completed()

        def submit_next() -> None:
            index = next(queue, None)
            if index is None:
                return
            part = partitions[index]
            features = []
            for first in range(0, len(part), group_size):
                group = part[first : first + group_size]
                tids = [fingerprints[e.track_id] for e in group]  # name each file's state
                prepared = [
                    client.submit(
                        prepare_track,
                        entry,
                        config,
                        threads,
                        key=f"prepare-{token}-{tid}",
                        retries=retries,
                        resources=resources if separating else None,  # demucs shares the GPU
                    )
                    for entry, tid in zip(group, tids, strict=True)
                ]
                extracted = client.submit(
                    whisper_stage,
                    prepared,
                    config,
                    threads,
                    key=f"whisper-{token}-{'+'.join(tids)}",
                    retries=retries,
                    resources=resources,
                )
                features.append(extracted)
                group_tracks[extracted] = len(group)
                completed.add(extracted)
            written = client.submit(
                write_groups,
                write,
                index,
                part,
                features,
                out,
                key=f"write-{token}-{index}",
                retries=retries,
            )
            writes[written] = index
            completed.add(written)

        for _ in range(window):
            submit_next()
        for future in completed:
            if future not in writes:
                done = group_tracks.pop(future)
                summary.processed += done
                if progress:
                    progress.advance(done)
                continue
            index = writes.pop(future)
            count_lost_workers()
            try:
                marker = future.result()
            except Exception as e:  # noqa: BLE001 - a failed partition is reported, not fatal
                summary.failed_partitions[index] = f"{type(e).__name__}: {e}"
                log.error(
                    "partition %d failed: %s",
                    index,
                    summary.failed_partitions[index],
                    extra={"partition": index},
                )
            else:
                markers[index] = marker
                summary.add(marker)
                summary.completed_partitions += 1
                _log_partition(marker)
            submit_next()
        summary.task_retries.update(retry_counts(client, token))
        stop_counting(client, token)


def _log_partition(marker: dict[str, Any]) -> None:
    index = marker["partition"]
    where = {"partition": index}
    log.info("partition %d complete: %d tracks", index, marker["tracks"], extra=where)
    for track_id, reason in marker["rejected_tracks"].items():
        log.warning("track %s rejected: %s", track_id, reason, extra=where | {"track_id": track_id})
