"""The two nginx configs: the upstream without CORS, and nginx as a careful CORS proxy.

Placeholders are @NAME@ (nginx itself uses `$` and braces); fill() replaces them.
"""

from __future__ import annotations

from pathlib import Path

ITEM_JSON = '{"id": 1, "name": "corsproxy", "ok": true}'

COMMON = """
daemon off;
worker_processes @WORKERS@;
pid @DIR@/@NAME@.pid;
error_log @DIR@/@NAME@-error.log warn;
events { worker_connections 4096; }
"""

TEMP_PATHS = """
    client_body_temp_path @DIR@/@NAME@-tmp/body;
    proxy_temp_path @DIR@/@NAME@-tmp/proxy;
    fastcgi_temp_path @DIR@/@NAME@-tmp/fastcgi;
    uwsgi_temp_path @DIR@/@NAME@-tmp/uwsgi;
    scgi_temp_path @DIR@/@NAME@-tmp/scgi;
    keepalive_requests 1000000;
"""

# The backend: no CORS at all. A preflight gets a bare 204 (so "direct" has a preflight
# figure to compare with), /sink reads and drops a POST body, /big is a static file.
UPSTREAM = (
    COMMON
    + """
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
"""
    + TEMP_PATHS
    + """
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
        root @DIR@/www;
        location = /api/item {
            default_type application/json;
            if ($request_method = OPTIONS) { return 204; }
            return 200 '@ITEM@';
        }
        location = /sink {
            default_type application/json;
            return 200 '{"ok": true}';
        }
    }
}
"""
)

# nginx as a CORS proxy, configured with care: the allowed localhost origin echoed (via a
# map, never `*` with credentials), upstream CORS headers replaced rather than duplicated,
# Vary: Origin on every answer, preflights answered here with 204 (403 for a refused
# origin), other OPTIONS forwarded, and an access log line per request as corsproxy writes.
CORS = (
    COMMON
    + """
http {
    access_log @DIR@/@NAME@-access.log combined buffer=64k flush=1s;
"""
    + TEMP_PATHS
    + r"""
    map $http_origin $cors_origin {
        default "";
        "~^https?://(localhost|127\.0\.0\.1|\[::1\]|[a-z0-9-]+\.localhost)(:[0-9]+)?$" $http_origin;
    }
    map $cors_origin $cors_credentials {
        "" "";
        default "true";
    }
    map "$request_method|$http_access_control_request_method|$http_origin|$cors_origin"
        $cors_preflight {
        default "";
        "~^OPTIONS\|[^|]+\|[^|]+\|$" "refuse";
        "~^OPTIONS\|[^|]+\|[^|]+\|.+$" "allow";
    }
    upstream backend {
        server 127.0.0.1:@UP@;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
        location / {
            if ($cors_preflight = allow) {
                add_header Access-Control-Allow-Origin $cors_origin always;
                add_header Access-Control-Allow-Credentials true always;
                add_header Access-Control-Allow-Methods $http_access_control_request_method always;
                add_header Access-Control-Allow-Headers $http_access_control_request_headers always;
                add_header Access-Control-Max-Age 600 always;
                add_header Vary "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" always;
                return 204;
            }
            if ($cors_preflight = refuse) {
                return 403;
            }
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
            @BUFFERS@
            proxy_hide_header Access-Control-Allow-Origin;
            proxy_hide_header Access-Control-Allow-Credentials;
            proxy_hide_header Access-Control-Expose-Headers;
            add_header Access-Control-Allow-Origin $cors_origin always;
            add_header Access-Control-Allow-Credentials $cors_credentials always;
            add_header Vary Origin always;
        }
    }
}
"""  # noqa: E501 (one nginx directive per line)
)


def buffers(size: str) -> str:
    """Proxy buffer directives for --nginx-buffers 64k; "" keeps nginx's defaults (8 × 4k)."""
    if not size:
        return "# proxy buffers: nginx's defaults"
    busy = double(size)
    return f"proxy_buffer_size {size}; proxy_buffers 16 {size}; proxy_busy_buffers_size {busy};"


def double(size: str) -> str:
    """Twice an nginx size: `double("64k") == "128k"`."""
    digits = size.rstrip("kKmM")
    return f"{int(digits) * 2}{size[len(digits) :]}"


def fill(template: str, **values: str | int) -> str:
    """`fill(UPSTREAM, DIR=..., NAME="upstream", PORT=8000, WORKERS=2)`."""
    text = template.replace("@ITEM@", ITEM_JSON)
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    return text


def write(workdir: Path, name: str, template: str, **values: str | int) -> Path:
    """Write the filled config and make its temp directories; returns the config's path."""
    (workdir / f"{name}-tmp").mkdir(exist_ok=True)
    conf = workdir / f"{name}.conf"
    conf.write_text(fill(template, DIR=str(workdir), NAME=name, **values))
    return conf
