"""Evaluate stage: one exact protocol (VOC07, VOC12, COCO) for both frameworks."""
