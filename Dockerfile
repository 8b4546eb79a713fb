# loraledger's HTTP API in one image: `docker build -t loraledger .` then `docker compose up`
# (compose.yaml adds PostgreSQL). Settings come from LORALEDGER_* variables (README, "Settings").
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY loraledger ./loraledger
COPY domain ./domain
COPY application ./application
COPY projections ./projections
COPY adapters ./adapters
COPY api ./api
RUN pip install . && rm -rf /src

# Never root: the service only needs its data folder.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin loraledger \
    && mkdir -p /data/styles \
    && chown -R loraledger:loraledger /data
USER loraledger
WORKDIR /data

# SQLite in the volume by default; compose.yaml points it at PostgreSQL instead.
ENV LORALEDGER_DATABASE_URL=sqlite:////data/loraledger.db \
    LORALEDGER_OUTPUT_DIR=/data/styles \
    LORALEDGER_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000

# Liveness: the process answers. Orchestrators that route traffic should ask /readyz as well.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["loraledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
