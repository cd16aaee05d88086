"""The kernel machinery blk-mq leans on, at the level the races need.

Names follow the kernel verbatim (``queue_work_on``, ``spin_lock_irqsave``).
A model function that stands for a kernel function carries a one-line
pointer to where it lives.  Everything that touches state another CPU can
see is ``async`` and awaits a scheduling point before the access.
"""
