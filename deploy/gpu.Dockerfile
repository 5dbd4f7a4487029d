# syntax=docker/dockerfile:1
# The speech/TTS agent for an NVIDIA GPU: `piface` built with `--features cuda` for one card's
# compute capability, on CUDA 12.x. CUDA 12 is the last major release that builds for Pascal
# (the GTX 1080 Ti is compute capability 6.1); scripts/cuda-env.sh refuses CUDA 13 for it.
#
#   docker build -f deploy/gpu.Dockerfile --build-arg CUDA_COMPUTE_CAP=61 -t piface-gpu .
#
# Build arguments: CUDA_COMPUTE_CAP (61: GTX 1080 Ti; 75, 86, 89, 90: later cards), UID/GID as in
# deploy/Dockerfile, PI_VERSION, RUST_VERSION, and the base images. The host needs the NVIDIA
# driver (a branch that still supports the card: 535-580 for Pascal) and the NVIDIA Container
# Toolkit; the card is given to the container by compose's device reservation (`--gpus` with
# docker run).

ARG CUDA_DEVEL_IMAGE=docker.io/nvidia/cuda:12.4.1-devel-ubuntu22.04
ARG CUDA_RUNTIME_IMAGE=docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim

FROM ${NODE_IMAGE} AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM ${CUDA_DEVEL_IMAGE} AS build
ARG RUST_VERSION=1.90.0
ARG CUDA_COMPUTE_CAP=61
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}"
WORKDIR /src
COPY . .
COPY --from=ui /src/frontend/build frontend/build
COPY --from=ui /src/frontend/embed-stamp frontend/embed-stamp
# cuda-env.sh checks nvcc (12.x for Pascal) and, below compute capability 7.0, forces
# scripts/cuda/pascal-compat.cuh into candle's kernels: the same path as `make serve-audio-1080`.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    export CUDA_HOME=/usr/local/cuda \
    && . scripts/cuda-env.sh "${CUDA_COMPUTE_CAP}" \
    && cargo build --release --locked --bin piface --features cuda \
    && install -D -m 0755 target/release/piface /out/piface

FROM ${NODE_IMAGE} AS pi
ARG PI_VERSION=0.73.1
RUN npm install --global --prefix /opt/pi --no-audit --no-fund "@mariozechner/pi-coding-agent@${PI_VERSION}" \
    && /opt/pi/bin/pi --version

FROM ${CUDA_RUNTIME_IMAGE} AS piface-gpu
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl git openssh-client direnv ffmpeg espeak-ng tini less procps \
    && rm -rf /var/lib/apt/lists/*
COPY --from=pi /usr/local/bin/node /usr/local/bin/node
COPY --from=pi /opt/pi /opt/pi
RUN ln -s /opt/pi/bin/pi /usr/local/bin/pi && pi --version
ARG UID=1000
ARG GID=1000
RUN (getent group "${GID}" >/dev/null || groupadd --gid "${GID}" piface) \
    && useradd --uid "${UID}" --gid "${GID}" --create-home --home-dir /home/piface --shell /bin/bash piface \
    && install -d -o "${UID}" -g "${GID}" -m 0700 /home/piface/.local /home/piface/.local/share \
        /home/piface/.local/share/piface-agent /home/piface/.pi /home/piface/.cache /home/piface/.cache/huggingface \
    && install -d -o "${UID}" -g "${GID}" -m 0755 /projects
COPY --from=build /out/piface /usr/local/bin/piface
# NVML (to find the card by name) comes with `utility`; the kernels need `compute`.
ENV HOME=/home/piface \
    HF_HOME=/home/piface/.cache/huggingface \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER piface
WORKDIR /home/piface
ENTRYPOINT ["/usr/bin/tini", "--", "piface"]
CMD ["agent", "--help"]
