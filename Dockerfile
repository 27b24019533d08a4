# CPU image: installs mlrepro and runs the demo tour by default.
#   docker build -t mlrepro .
#   docker run --rm -v "$PWD/runs:/app/runs" mlrepro                 # the demo
#   docker run --rm -v /path/to/datasets:/data:ro mlrepro run mnist-mlp --seeds 0,1,2
FROM python:3.11-slim

# The CPU wheel index keeps the image free of the multi-GB CUDA build of torch.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MLREPRO_DATA=/data \
    MLREPRO_CACHE=/tmp/mlrepro-cache \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
RUN pip install --no-cache-dir "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir "./[rl]" \
    && useradd --create-home --uid 1000 mlrepro \
    && mkdir -p /app/runs /data \
    && chown mlrepro /app/runs

USER 1000
ENTRYPOINT ["mlrepro"]
CMD ["demo"]
