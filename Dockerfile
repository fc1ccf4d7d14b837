# IVR Engine node image (docker-compose.yml runs two behind Kamailio).
# Docker cannot run on the development machines; the same topology is tested from Debian
# packages by tests/integration/test_kamailio.py and test_supervisor.py.
FROM python:3.11-slim-bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        espeak-ng sox libsox-fmt-all gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ivr
COPY requirements/ requirements/
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements/torch.txt \
 && for f in requirements/*.txt; do case "$f" in *torch.txt|*nodeps.txt|*dev.txt) ;; \
        *) pip install --no-cache-dir -r "$f" ;; esac; done \
 && if [ -f requirements/nodeps.txt ]; then \
        pip install --no-cache-dir --no-deps -r requirements/nodeps.txt; fi
COPY . .
RUN pip install --no-cache-dir -e . --config-settings editable_mode=compat \
    && python setup.py -q build_ext --inplace  # compliance/_wordscan.c, engine/rtp/_rtpsend.c (gcc above)
EXPOSE 5080/udp 5080/tcp 9108/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["ivr", "run"]
