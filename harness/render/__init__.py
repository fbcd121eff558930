"""Render stage: Caffe prototxt/solver and Darknet cfg/data files from templates."""
