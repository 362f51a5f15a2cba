# Cosmos LoRA Studio: the studio (and the trainer it drives) on port 7860.
#   docker build -t cosmos-lora-studio .
#   docker run --gpus all -p 7860:7860 -e HF_TOKEN \
#     -v $PWD/workspace:/app/workspace -v cosmos-cache:/home/studio/.cache cosmos-lora-studio
# Base: NVIDIA's CUDA 12.8 runtime on Ubuntu 24.04 (Python 3.12; the project needs 3.11+), pinned by tag.
# torch comes from PyPI by default: its CUDA build brings its own CUDA libraries, so the host needs only an NVIDIA
# driver recent enough for it. A CPU-only image: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu
FROM nvidia/cuda:12.8.0-runtime-ubuntu24.04

ARG TORCH_INDEX=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

# Ubuntu 24.04's Python refuses system-wide pip installs (PEP 668): the dependencies live in /opt/venv.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

WORKDIR /app
# Dependencies before the code, so editing the code does not reinstall them.
COPY requirements.txt .
RUN if [ -n "$TORCH_INDEX" ]; then \
      pip install --index-url "$TORCH_INDEX" "torch==$(sed -n 's/^torch==//p' requirements.txt)"; \
    fi \
 && pip install -r requirements.txt

COPY . .
# uid 1000 (the image's default "ubuntu" user is removed to free it): Hugging Face Docker Spaces run as 1000, and a
# bind-mounted ./workspace of a typical host user stays writable.
RUN userdel --remove ubuntu 2>/dev/null || true \
 && useradd --create-home --uid 1000 studio \
 && mkdir -p /app/workspace /home/studio/.cache \
 && chown -R studio /app/workspace /home/studio/.cache
USER studio
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"
# No --workspace: ./workspace (/app/workspace), or /data/workspace on a Space with persistent storage.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
