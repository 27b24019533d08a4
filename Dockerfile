# CPU image: mlrepro with the CPU build of torch; `mlrepro demo` (every quick preset) by default.
#   docker build -t mlrepro .
#   mkdir -p runs results
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/runs:/app/runs" mlrepro        # demo -> ./runs
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/runs:/app/runs" -v "$PWD/results:/app/results" \
#       -v /path/to/datasets:/data:ro mlrepro run mnist-mlp --seeds 0,1,2
# Create the host folders first: Docker creates missing ones owned by root. --user makes the outputs
# yours; without it the container runs as uid 1000. Any uid can write the run, results, data and
# cache folders, and HOME is /tmp. The CUDA image is Dockerfile.cuda.
FROM python:3.11-slim

# The CPU wheel index keeps the image free of the multi-GB CUDA build of torch. The version must
# match constraints.txt (tests/test_packaging.py checks that it does).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu

# USER: getpass.getuser(), which torch uses to name cache folders, fails for a --user uid that has
# no passwd entry unless the variable is set.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    USER=mlrepro \
    MLREPRO_DATA=/data \
    MLREPRO_CACHE=/tmp/mlrepro-cache \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
COPY constraints.txt ./
# torch alone from PyTorch's index; its dependencies, and mlrepro's, from PyPI at the tested versions.
RUN pip install --no-cache-dir --no-deps "torch==${TORCH_VERSION}+${TORCH_VARIANT}" \
        --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir -c constraints.txt "./[rl]" \
    && useradd --uid 1000 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin mlrepro \
    && mkdir -p /app/runs /app/results /data \
    && chmod 1777 /app/runs /app/results /data

USER 1000
ENTRYPOINT ["mlrepro"]
CMD ["demo"]
