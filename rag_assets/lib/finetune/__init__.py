"""Embedding fine-tuning (issue 14): pure logic, no Dagster.

questions  read the `synthetic_questions` parquet (the retrieval stage writes it)
mining     training triples (question, gold section, hard negative from our own index)
train      the full fine-tune: MultipleNegativesRankingLoss in plain torch, run by Ray Train's TorchTrainer
adapter    the cheap option: a query-side linear adapter over the frozen model (no corpus re-embedding)
validate   MRR@10 / hit@k on the page-disjoint validation split (section retrieval, before vs after)
model_dir  model directories with their own manifest, committed atomically; the `finetuned` alias
run        one fine-tuning run end to end (what the `finetuned_embedding_model` asset calls)
"""
