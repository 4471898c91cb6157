# Brain MRI tumor classifier: the serving image (default target) and a training image.
#
#   docker compose up --build                         # build and serve on :8000
#   docker build -t brain-mri-classifier .            # the serving image (target runtime)
#   docker build --target train -t brain-mri-classifier-train .
#
# Written for BuildKit and for the legacy builder alike (no heredocs, no RUN --mount), and for
# any Debian-like base image with Python 3.11 (`python3` and its venv module), so that a machine
# that cannot pull the official image can pass a stand-in as BASE_IMAGE.
#
# pip reads its usual variables from build arguments, for building behind a package mirror or
# with no network at all from a folder of wheels served on the host, as .ci/container does:
#   docker build --network host --build-arg PIP_NO_INDEX=1 \
#       --build-arg PIP_FIND_LINKS=http://127.0.0.1:8765/ .
# Unset (the default), pip installs from the package index as usual.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# A fixed numeric uid/gid: a mounted folder can be given to it on the host, and orchestrators
# can check runAsNonRoot.
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-log-init --no-create-home --home-dir /app \
            --shell /usr/sbin/nologin app
WORKDIR /app

# ---------------------------------------------------------------------------------------------
# The virtual environment with what serving needs: tensorflow-cpu and the `serve` extra, as
# pyproject.toml declares them. Only the dependencies are installed, not the project, so that
# training/ stays out of the serving image.
FROM base AS build
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ARG PIP_TRUSTED_HOST
COPY pyproject.toml docker/requirements.py /tmp/build/
RUN python3 -m venv /opt/venv \
 && python3 /tmp/build/requirements.py /tmp/build/pyproject.toml serve > /tmp/build/serve.txt \
 && /opt/venv/bin/pip install -r /tmp/build/serve.txt \
 && /opt/venv/bin/pip check

# ---------------------------------------------------------------------------------------------
# Serving image. It copies the finished environment rather than building on the `build` stage,
# so its history holds none of the build arguments above (a mirror URL may carry a token).
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
# The model contract (layout, card, signature keys, canonical bytes) that service/ imports.
COPY model_contract/ /app/model_contract/
COPY service/ /app/service/
# The shipped model(s), TF Serving layout models/<name>/<version>/ (the highest version is
# served); a volume on /app/models replaces them.
COPY models/ /app/models/
ENV HOME=/tmp \
    MRI_HOST=0.0.0.0 \
    MRI_PORT=8000 \
    MRI_MODEL_DIR=/app/models
USER 10001:10001
EXPOSE 8000
# Readiness, not liveness: healthy means the model is loaded and warmed up. Python's urllib, so
# the image needs no curl.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('MRI_PORT', '8000'), timeout=4)"]
# Exec form: python is PID 1 and receives SIGTERM itself; uvicorn then stops accepting, lets
# the requests in flight finish (up to MRI_GRACEFUL_SHUTDOWN_SECONDS) and exits 0. Host, port
# and model folder come from the MRI_* variables above, so `docker run -e` can change them.
CMD ["python3", "-m", "service"]

# ---------------------------------------------------------------------------------------------
# Training image: the environment above plus the `train` extra, and training/. Built on the
# `build` stage to save a second copy of TensorFlow; its history shows the PIP_* build
# arguments, so keep secrets out of them (or build this image where no mirror needs a token).
#   docker compose --profile train run --rm train
FROM build AS train
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ARG PIP_TRUSTED_HOST
RUN python3 /tmp/build/requirements.py /tmp/build/pyproject.toml train > /tmp/build/train.txt \
 && /opt/venv/bin/pip install -r /tmp/build/train.txt \
 && /opt/venv/bin/pip check \
 && mkdir -p /app/models /app/runs \
 && chown 10001:10001 /app/models /app/runs
COPY model_contract/ /app/model_contract/
COPY training/ /app/training/
# Matplotlib and Keras want a writable home for their caches; any uid may run this image.
ENV HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
ENTRYPOINT ["python3", "-m", "training"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# `docker build .` without --target builds the last stage: make that the serving image. The
# training stage sits after `runtime` so that the legacy builder, which builds every stage up
# to its target, skips it for `--target runtime` (what docker-compose.yml's `api` asks for).
FROM runtime AS default
