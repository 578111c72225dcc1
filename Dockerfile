# The loopline image: `loopline serve` replicas and the control plane (`loopline server`).
#   docker build -t loopline:0.1.0 .
# Dependencies sit in a lower layer than loopline itself, so a change to loopline rebuilds only the last
# layers. The image runs as an unprivileged user and writes only to the volumes the manifests mount.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/loopline
COPY pyproject.toml ./
# loopline's dependencies, with PostgreSQL and both object stores, read from pyproject.toml.
RUN python - > requirements.txt <<'PYTHON'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + extras["postgres"] + extras["azure"] + extras["s3"]))
PYTHON
RUN pip install --no-cache-dir -r requirements.txt

COPY README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 10001
ENTRYPOINT ["loopline"]
CMD ["--help"]
