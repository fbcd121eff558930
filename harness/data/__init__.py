"""Data stage: read and validate Pascal VOC, convert to Darknet and Caffe-SSD layouts, synthesise smears."""
