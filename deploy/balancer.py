"""nginx in front of the app instances (deploy/cluster.py): HTTP and websockets (Upgrade), one config file in the
cluster's state directory, run in the foreground as a child of ours."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import Process, free_port, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# What the balancer answers when no instance did (one was killed in the middle of the request): a GraphQL error
# with a code, as the app's own. The outcome of a mutation cut off so is unknown to the client (in doubt).
UNAVAILABLE = '{"errors":[{"message":"No instance answered: try again","extensions":{"code":"UNAVAILABLE"}}]}'
NGINX_CONF = """
worker_processes 1;
user root;
daemon off;
pid {state}/nginx.pid;
error_log {state}/nginx-error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {state}/nginx-body;
    proxy_temp_path {state}/nginx-proxy;
    fastcgi_temp_path {state}/nginx-fastcgi;
    uwsgi_temp_path {state}/nginx-uwsgi;
    scgi_temp_path {state}/nginx-scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    upstream followup {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_read_timeout 1h;   # websockets stay open; HTTP requests end on the app's own timeouts
        # An instance that is down, or answers 503, is skipped for fail_timeout. A request it refused to connect
        # is sent to the other one; one it answered 503 too (@again): a 503 means nothing of it was kept (the app
        # answers 500 when something may have been). A request cut off in the middle (the instance died with it
        # in hand) is never sent twice: the client gets 502 UNAVAILABLE and does not know whether it was kept.
        proxy_next_upstream error timeout http_503;
        proxy_next_upstream_tries 2;
        recursive_error_pages on;
        location / {{
            proxy_pass http://followup;
            proxy_intercept_errors on;
            error_page 503 = @again;
            error_page 502 = @unavailable;
        }}
        location @again {{
            proxy_pass http://followup;
            error_page 502 = @unavailable;
        }}
        location @unavailable {{
            default_type application/json;
            return 502 '{unavailable}';
        }}
    }}
}}
"""


@dataclass
class Balancer(Process):
    port: int = field(default_factory=free_port)
    state: Path = Path()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, upstreams: list[int]) -> None:
        if not Path(NGINX).exists():
            raise SystemExit("nginx is missing: `make nginx` installs Debian's nginx-light")
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in upstreams)
        conf = self.state / "nginx.conf"
        conf.write_text(NGINX_CONF.format(state=self.state, servers=servers, port=self.port, unavailable=UNAVAILABLE))
        self.spawn([NGINX, "-p", str(self.state), "-c", str(conf)])
        wait_until(lambda: _listening(self.port), "nginx", 20)
