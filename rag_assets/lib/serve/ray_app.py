"""The same FastAPI app on Ray Serve, one app per replica (its own index holder, embedder and query log writer).

    serve run rag_assets.lib.serve.ray_app:app              # RAG_* settings from the environment
    rag-assets serve --ray --replicas 2 [--host H] [--port P]

The query embedder runs on a GPU per replica when the cluster has one (sentence-transformers picks CUDA).
"""

from __future__ import annotations

from ray import serve

from rag_assets.lib.settings import Settings


@serve.deployment(name="rag_assets", max_ongoing_requests=64)
@serve.ingress()
class RagServer:
    def __init__(self, data_dir: str | None = None, token: str | None = None):
        self.data_dir, self.token = data_dir, token

    def __serve_build_asgi_app__(self):
        from rag_assets.lib.serve.app import api_token, create_app

        return create_app(Settings.from_env(data_dir=self.data_dir), token=self.token or api_token())


def gpus_per_replica(replicas: int) -> float:
    """A whole GPU per replica when there are enough, a share when fewer, none without."""
    import ray

    gpus = float(ray.cluster_resources().get("GPU", 0))
    return 0.0 if gpus <= 0 else min(1.0, gpus / replicas)


def deployment(replicas: int = 1, data_dir: str | None = None, token: str | None = None, num_cpus: float = 1,
               num_gpus: float | None = None):
    """The bound application: RagServer with N replicas; call after ray.init."""
    num_gpus = gpus_per_replica(replicas) if num_gpus is None else num_gpus
    return RagServer.options(
        num_replicas=replicas, ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
    ).bind(data_dir, token)


def build_app(args: dict):
    """`serve run rag_assets.lib.serve.ray_app:build_app replicas=2 data_dir=...`"""
    return deployment(int(args.get("replicas", 1)), args.get("data_dir"))


app = RagServer.bind()
