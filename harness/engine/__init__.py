"""Run stage: install, drive and time the native frameworks (Caffe-SSD, Darknet)."""
