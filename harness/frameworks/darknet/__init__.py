"""Darknet YOLOv3: the backend, the one cfg parser (``cfg.py``), the CLI driver, libdarknet and OpenCV paths."""
