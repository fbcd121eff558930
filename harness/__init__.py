"""leukonet-harness: reproduce Wang et al. 2019 on native Caffe-SSD and Darknet."""

__version__ = "0.1.0"
