"""The settings resource: environment variables by default, Dagster run config may override each."""


from typing import Optional

import dagster as dg

from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout


class RagSettings(dg.ConfigurableResource):
    """Unset fields fall back to RAG_* environment variables, then to the bundled defaults."""

    docs_dir: Optional[str] = None
    docs_base_url: Optional[str] = None
    data_dir: Optional[str] = None
    embedding_model: Optional[str] = None
    chunk_size: Optional[int] = None
    chunk_overlap: Optional[int] = None
    ray_address: Optional[str] = None
    ray_min_chunks: Optional[int] = None

    def settings(self) -> Settings:
        return Settings.from_env(
            docs_dir=self.docs_dir,
            docs_base_url=self.docs_base_url,
            data_dir=self.data_dir,
            embedding_model=self.embedding_model,
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            ray_address=self.ray_address,
            ray_min_chunks=self.ray_min_chunks,
        )

    def layout(self) -> Layout:
        return Layout(self.settings().data_dir)
