FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 fraudblock
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY adapters ./adapters
COPY sql ./sql
RUN pip install .

USER fraudblock
ENV FRAUDBLOCK_HOST=0.0.0.0 FRAUDBLOCK_PORT=8080 FRAUDBLOCK_LOG_FORMAT=json \
    FRAUDBLOCK_DATA_DIR=/home/fraudblock/data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2); sys.exit(0)" || exit 1
CMD ["fraudblock", "serve"]
