"""The nginx image's entrypoint: writes a per-pod config, then runs what the Pod asked for.

Like the official image's entrypoint it only prepares things and execs its arguments;
when those are ``nginx …`` (the image's default command), the generated config is put
in front. Everything nginx writes (pid file, temp files, logs) lives in the pod's
private /run and /var/log, so pods never collide and the host's nginx is untouched.
A ConfigMap mounted at /etc/nginx/conf.d replaces the default server, as in the image.
"""

from __future__ import annotations

import glob
import os
import sys

PREFIX = "/run/nginx"
LOGS = "/var/log/nginx"
CONF_D = "/etc/nginx/conf.d"
HTML = "/usr/share/nginx/html"

DEFAULT_SERVER = f"""    server {{
        listen 80;
        listen [::]:80;
        server_name localhost;
        location / {{
            root {HTML};
            index index.html index.htm;
        }}
        error_page 500 502 503 504 /50x.html;
    }}
"""


def config() -> str:
    temp = "".join(f"    {kind}_temp_path {PREFIX}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    servers = f"    include {CONF_D}/*.conf;\n" if glob.glob(f"{CONF_D}/*.conf") else DEFAULT_SERVER
    return f"""worker_processes 1;
pid {PREFIX}/nginx.pid;
error_log {LOGS}/error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {LOGS}/access.log;
    sendfile on;
    keepalive_timeout 65;
{temp}{servers}}}
"""


def main(argv: list[str]) -> None:
    os.makedirs(PREFIX, exist_ok=True)
    os.makedirs(LOGS, exist_ok=True)
    conf = f"{PREFIX}/nginx.conf"
    with open(conf, "w") as f:
        f.write(config())
    if argv and os.path.basename(argv[0]) == "nginx":
        # -e before the config is read: the compiled-in /var/log/nginx/error.log is not ours to choose.
        argv = [argv[0], "-p", f"{PREFIX}/", "-c", conf, "-e", f"{LOGS}/error.log", *argv[1:]]
    if not argv:
        sys.exit("nginx image: nothing to run")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
