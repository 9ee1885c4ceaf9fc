"""Fine-tuning wiring (issue 14): the finetuned_embedding_model asset."""

from rag_assets.defs.finetune import assets

ASSETS = [assets.finetuned_embedding_model]
