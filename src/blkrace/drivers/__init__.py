"""Device drivers on top of blk-mq: what fills the blk_mq_ops tables."""
