"""Evaluation assets (issue 4): eval_questions, reference_answers, responses, retrieval_scores, quality_scores, score_report."""
