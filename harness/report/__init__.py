"""Report stage: tables, figures, provenance, HTML/Markdown."""
