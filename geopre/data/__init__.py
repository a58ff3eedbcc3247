"""Dataset readers (KITTI raw, Cityscapes)."""
