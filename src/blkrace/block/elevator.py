"""block/elevator.c and include/linux/elevator.h: the scheduler's ops table.

Kernel baseline: v5.7 (for-5.8/block, as block/blk-mq.py).
"""

from __future__ import annotations


class elevator_mq_ops:
    """struct elevator_mq_ops: async callbacks; optional ones are None."""

    __slots__ = ("insert_requests", "dispatch_request", "has_work", "prepare_request", "finish_request")

    def __init__(self, insert_requests, dispatch_request, has_work, prepare_request=None, finish_request=None):
        self.insert_requests = insert_requests
        self.dispatch_request = dispatch_request
        self.has_work = has_work
        self.prepare_request = prepare_request
        self.finish_request = finish_request


class elevator_type:
    __slots__ = ("elevator_name", "ops")

    def __init__(self, name, ops):
        self.elevator_name = name
        self.ops = ops


class elevator_queue:
    __slots__ = ("type", "elevator_data")

    def __init__(self, etype, data):
        self.type = etype
        self.elevator_data = data
