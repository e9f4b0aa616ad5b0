# syntax=docker/dockerfile:1
# lstmbot: serve without TensorFlow (target "runtime", the default), or train (target "train").

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- builder: a virtual environment with the serving dependencies only --------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A C compiler for the generator's kernel (core/qkernel.c); the runtime stage needs none.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN /opt/venv/bin/pip install "setuptools>=69" wheel \
    && mkdir -p core train bot cli migrations \
    && touch core/__init__.py train/__init__.py bot/__init__.py cli/__init__.py migrations/__init__.py \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall -y lstmbot
COPY core core
COPY train train
COPY bot bot
COPY sandbox sandbox
COPY cli cli
COPY migrations migrations
COPY setup.py ./
# A wheel with the compiled kernel, installed here and kept for the train stage (which has no gcc).
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-deps /wheels/lstmbot-*.whl \
    && /opt/venv/bin/python -c "from core.lstm_step import KERNEL; assert KERNEL.startswith('C'), KERNEL"

# --- runtime: slim, non-root, models included, migrations applied at start ----------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH \
    MODEL_DIR=/app/models CORPORA_DIR=/app/corpora DATABASE_URL=sqlite+aiosqlite:////app/data/lstmbot.sqlite3
RUN useradd --create-home --uid 10001 lstmbot
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY models models
# The books: the novelty badge and "Real or dream?" read them (and `lstmbot train` in the train image).
COPY corpora corpora
RUN mkdir -p /app/data && chown lstmbot:lstmbot /app/data
USER lstmbot
EXPOSE 8443 9464
# The process answers /healthz on METRICS_PORT when it is set; otherwise check it can start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; p = os.environ.get('METRICS_PORT', '0'); sys.exit(0 if p == '0' else (urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).status != 200))"]
ENTRYPOINT ["/bin/sh", "-c", "lstmbot db upgrade && exec lstmbot run"]

# --- train: the same code with TensorFlow, for `lstmbot train` / `lstmbot eval` ----------------
FROM runtime AS train
USER root
COPY --from=builder /wheels /wheels
# The same wheel, now with its train extra (TensorFlow, Keras) from the package index.
RUN wheel="$(echo /wheels/lstmbot-*.whl)" \
    && /opt/venv/bin/pip install --no-cache-dir "${wheel}[train]" && rm -rf /wheels
USER lstmbot
ENTRYPOINT ["lstmbot"]
CMD ["train", "--help"]
