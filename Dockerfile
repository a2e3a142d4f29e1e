# corsproxy as a container: `docker build -t corsproxy .`, then
#   docker run --rm -p 127.0.0.1:8080:8080 -e CORSPROXY_UPSTREAM=http://host.docker.internal:8000 \
#     --add-host=host.docker.internal:host-gateway corsproxy
# A config file mounted at /config/corsproxy.yaml is picked up when present (WORKDIR /config).
# HTTPS (`serve --https`): mount a volume at /data (CORSPROXY_HOME) so that the local certificate
# authority, trusted once by the browsers, outlives the container: -v corsproxy-data:/data
# (docs/https.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged user with a fixed numeric UID/GID (numeric so that Kubernetes'
# runAsNonRoot can verify it without reading /etc/passwd).
# (--no-log-init: no sparse lastlog entry for a high UID, a known image-size trap.)
RUN groupadd --gid 10001 corsproxy \
 && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init --home-dir /nonexistent \
        --shell /usr/sbin/nologin corsproxy \
 && mkdir /config \
 && install -d -o 10001 -g 10001 -m 700 /data

# Dependencies first, read from pyproject.toml (runtime deps + the "fast" extra, uvloop),
# so this layer is rebuilt only when pyproject.toml changes, not on every source edit.
# All of them ship manylinux wheels: no compiler is installed, none is left behind.
COPY pyproject.toml /src/
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['fast']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The package itself, without touching the dependencies installed above. The source tree is
# removed afterwards: it is installed into site-packages, not run from /src.
COPY corsproxy/ /src/corsproxy/
RUN pip install --no-cache-dir --no-deps /src \
 && rm -rf /src \
 && corsproxy --version

# `serve` loads ./corsproxy.yaml when neither -c nor CORSPROXY_CONFIG is given: mount a file
# at /config/corsproxy.yaml to configure the proxy with it. /config is made by root above (so
# it stays root-owned: the proxy only reads there; builders differ on WORKDIR's owner).
WORKDIR /config
USER 10001:10001

# Inside a container the proxy must listen on all of the container's interfaces, or a
# published port cannot reach it; publish it on the host's loopback only (-p 127.0.0.1:8080:8080).
ENV CORSPROXY_HOST=0.0.0.0
# `serve --https` keeps its certificate authority here (the user has no home): owned by the user
# above, readable by it only; a named volume mounted here starts with that ownership.
ENV CORSPROXY_HOME=/data
EXPOSE 8080

# Standard library only (slim has no curl). No proxy environment variables are followed (the
# check must reach this container's own loopback); plain HTTP is tried first, then HTTPS with
# any certificate, for `listen.tls`. The port comes from CORSPROXY_PORT (default 8080): a port
# set only in the config file is not seen here, so change the port with CORSPROXY_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, ssl, sys, urllib.request as r\nport = os.environ.get('CORSPROXY_PORT') or '8080'\nget = r.build_opener(r.ProxyHandler({}), r.HTTPSHandler(context=ssl._create_unverified_context())).open\nfor scheme in ('http', 'https'):\n    try:\n        get(f'{scheme}://127.0.0.1:{port}/__corsproxy/health', timeout=2)\n        sys.exit(0)\n    except Exception:\n        pass\nsys.exit(1)"]

# The proxy is PID 1 and installs its own SIGTERM/SIGINT handlers (drain, exit 0),
# so no init wrapper is needed and `docker stop` ends it within seconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["corsproxy"]
CMD ["serve"]
