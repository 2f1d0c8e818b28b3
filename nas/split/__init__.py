"""Splitting a trained supernet into sub-supernets (NAS-LID, arXiv 2211.12759; GM-NAS's
gradient matching, arXiv 2203.15207): restrictions, the op comparison that picks the edge,
and the evaluator that routes each arch to its sub-supernet."""
