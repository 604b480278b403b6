# One image for every Binome service; the command picks what runs.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN pip install --no-cache-dir .
ENV BINOME_HOST=0.0.0.0 BINOME_PORT=8000
EXPOSE 8000
CMD ["binome", "up"]
