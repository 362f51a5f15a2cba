# Cosmos LoRA Studio: the studio (and the trainer it drives) on port 7860.
#   docker build -t cosmos-lora-studio .
#   docker run --gpus all -p 7860:7860 -v $PWD/workspace:/app/workspace -e HF_TOKEN cosmos-lora-studio
# For a CPU-only image pass a CPU wheel index for torch: --build-arg TORCH_INDEX=<PyTorch's CPU wheel index URL>
FROM python:3.11-slim

ARG TORCH_INDEX=""
ENV PYTHONUNBUFFERED=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    COSMOS_STUDIO_CACHE=/app/workspace/.cache \
    HF_HOME=/app/workspace/.cache/huggingface

WORKDIR /app
COPY requirements.txt .
RUN if [ -n "$TORCH_INDEX" ]; then pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.13.0; fi \
 && pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 studio && mkdir -p /app/workspace && chown -R studio /app
USER studio
EXPOSE 7860
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860", "--workspace", "/app/workspace"]
