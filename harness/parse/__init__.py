"""Parse stage: native logs (Caffe glog, Darknet stdout) into loss tables."""
