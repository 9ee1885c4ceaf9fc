"""Hot reload: a `refresh` commits a new index; the running server answers from it without a restart, while a
request that took the old index keeps it to its end."""


from rag_assets.cli.refresh import refresh_once
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import manifest
from rag_assets.lib.serve.app import create_app
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.settings import Settings
from rag_assets_tests.serve_server import LiveServer
from rag_assets_tests.test_refresh import add_paragraph

NEW_FACT = "The quokkaflux dialect registers itself with csv.register_dialect under the name quokkaflux."


def in_old_index_lexically(live) -> bool:
    return bool(live.service.holder.current().retriever.lexical("quokkaflux", 1))


def test_server_answers_from_a_newly_committed_index_without_restart(copy_built_index, tmp_path):
    docs_dir, data_dir = copy_built_index
    settings = Settings.from_env(data_dir=data_dir).with_(serve_reload_interval_s=0.0)  # look on every request
    live = LiveServer(create_app(settings, token=None, llm_base_url=None,
                                 query_log=QueryLog.for_data_dir(tmp_path / "log")))
    try:
        question = {"question": "What is the quokkaflux dialect?", "mode": "lexical", "k": 3}
        before = live.post("/query", question).json()
        assert before["sources"] and not in_old_index_lexically(live)
        in_flight = live.service.holder.current()  # what a request that started now would keep

        add_paragraph(docs_dir / "library/csv.html", NEW_FACT)
        rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir),
                          docs_base_url="https://docs.python.org/3.11/", ray_min_chunks=100_000)
        counts, _ = refresh_once(rag)
        assert counts["docs_changed"] == 1

        after = live.post("/query", question).json()
        committed = manifest.read(data_dir)
        assert after["index"]["version"] == committed.build_id != before["index"]["version"]
        assert live.service.holder.reloads == 1
        new_chunk = live.service.holder.current().retriever.lexical("quokkaflux", 1)[0]
        assert "quokkaflux" in new_chunk.text and after["sources"][0]["chunk_id"] == new_chunk.id
        assert new_chunk.id not in [s["chunk_id"] for s in before["sources"]]
        assert live.get("/readyz").json()["index"]["version"] == committed.build_id
        # the old index object still answers, from the version it was pinned to
        old_hits = in_flight.retriever.search("quokkaflux dialect", "semantic", 3)
        assert old_hits and all("quokkaflux" not in h.text for h in old_hits)
        assert in_flight.retriever.table_version == in_flight.manifest.lancedb_version
    finally:
        live.close()
