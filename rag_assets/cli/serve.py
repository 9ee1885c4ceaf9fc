"""`rag-assets serve [--host 127.0.0.1] [--port 8000] [--ray --replicas N]`: the question-answering HTTP API."""

from __future__ import annotations

import sys

LOOPBACK = "127.0.0.1"
KEEP_ALIVE_S = 75


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve /query, /stream and an OpenAI-compatible /v1/chat/completions over HTTP")
    p.add_argument("--host", default=None,
                   help="address to bind (default 127.0.0.1; without RAG_API_TOKEN only loopback unless given)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--ray", action="store_true", help="deploy the same app on Ray Serve (RAY_ADDRESS or local)")
    p.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (with --ray)")
    p.set_defaults(func=run)


def bind_address(host: str | None, token: str | None) -> tuple[str, str]:
    """(host, what to tell the user): without a token only loopback, unless --host says otherwise."""
    if token:
        return host or LOOPBACK, "auth on: every endpoint but /healthz and /readyz needs the bearer token"
    if host is None:
        return LOOPBACK, "RAG_API_TOKEN is not set: no auth, so binding 127.0.0.1 only (pass --host to override)"
    return host, f"RAG_API_TOKEN is not set: no auth, bound to {host} because --host says so"


def run(args) -> int:
    from rag_assets.lib.serve.app import api_token
    from rag_assets.lib.settings import Settings

    if args.replicas < 1:
        raise ValueError("--replicas must be at least 1")
    settings = Settings.from_env()
    token = api_token()
    host, notice = bind_address(args.host, token)
    print(f"rag-assets serve: {notice}", file=sys.stderr)
    if args.ray:
        return _run_ray(settings, host, args.port, args.replicas, token)
    import uvicorn

    from rag_assets.lib.serve.app import create_app

    print(f"rag-assets serve: http://{host}:{args.port} (data dir {settings.data_dir}; "
          f"OpenAI base URL http://{host}:{args.port}/v1)", file=sys.stderr)
    # Keep-alive longer than the clients' pools and proxies idle (uvicorn's 5 s races a pooled connection's reuse).
    uvicorn.run(create_app(settings, token=token), host=host, port=args.port, log_level="warning",
                access_log=False, timeout_keep_alive=KEEP_ALIVE_S)
    return 0


def _run_ray(settings, host: str, port: int, replicas: int, token: str | None) -> int:
    import time

    import ray
    from ray import serve

    from rag_assets.lib.serve.ray_app import deployment

    ray.init(address=settings.ray_address, ignore_reinit_error=True, include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(replicas, str(settings.data_dir), token), name="rag_assets", route_prefix="/")
    print(f"rag-assets serve: Ray Serve, {replicas} replica(s) at http://{host}:{port} (Ctrl-C stops)",
          file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0
