"""Caffe-SSD: the backend (``backend.py``) and its native driver, split as Darknet's is: install
discovery and build identity (``install.py``), ``caffe train`` (``train.py``), pycaffe / OpenCV
detection and timing (``detect.py``) with its child process (``worker.py``), and the count
detectors (``detectors.py``)."""
