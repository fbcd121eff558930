"""``harness count``: the slide-level leukocyte differential from a trained detector (docs/count.md)."""
