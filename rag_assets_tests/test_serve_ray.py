"""The same app deployed on Ray Serve (the session's local Ray) answers a query over HTTP."""

import socket

import requests

from rag_assets.lib.index import manifest
from rag_assets.lib.serve.query_log import read_log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_serve_deployment_answers_a_query(ray_session, copy_built_index):
    from ray import serve

    from rag_assets.lib.serve.ray_app import deployment

    _, data_dir = copy_built_index  # the replica writes its query log under the data dir
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(deployment(1, str(data_dir), num_cpus=0.5, num_gpus=0), name="rag_assets", route_prefix="/")
        r = requests.post(f"http://127.0.0.1:{port}/query", json={"question": "How do I read a CSV file?", "k": 2},
                          timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"].strip() and body["sources"][0]["url"].startswith(
            "https://docs.python.org/3.11/library/csv.html")
        assert body["index"]["version"] == manifest.read(data_dir).build_id
        queries, _ = read_log(data_dir)
        assert [(q["trace_id"], q["status"]) for q in queries] == [(body["trace_id"], "ok")]
    finally:
        serve.shutdown()
