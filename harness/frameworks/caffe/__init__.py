"""Caffe-SSD: the backend (``backend.py``) and its native driver (``driver.py``)."""
