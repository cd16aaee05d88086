"""blk-mq, after block/blk-mq*.c.  Each module mirrors one kernel file.

Version pinned per race: the budget race follows Jens Axboe's for-5.8/block
tree right after a0823421a4d7 (v5.7 plus Doug Anderson's series 1/4 and 2/4,
without Salman Qazi's hctx->dispatch check); see docs/research/v5.7-dispatch.md.
"""
