"""blkrace: an executable, deterministic model of Linux blk-mq, and an explorer of its interleavings."""

__version__ = "0.1.0"
