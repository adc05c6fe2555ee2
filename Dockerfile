# One image for every service process (API, worker, Flower); the command picks the process.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt
COPY . .
# Admin and API-docs assets, served by WhiteNoise (settings need some key to load; none is kept).
RUN JWT_PUBLIC_KEY=build-time JWT_PRIVATE_KEY=build-time python manage.py users collectstatic --noinput -v0
# Mount points of named volumes the app writes (compose copies their owner into a new volume).
RUN useradd --uid 10001 --no-create-home app \
    && mkdir -p var/mail /run/jwt /run/jwt-public /run/rabbitmq-definitions \
    && chown app var var/mail /run/jwt /run/jwt-public /run/rabbitmq-definitions
USER app
