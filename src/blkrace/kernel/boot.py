"""Booting a model machine: the subsystems every scenario with CPU hotplug needs.

Kernel baseline: v5.8 (init/main.c).
"""

from __future__ import annotations

from blkrace.kernel.cpuhp import cpuhp_init, default_steps
from blkrace.kernel.machine import Kernel
from blkrace.kernel.smp import init_smp
from blkrace.kernel.stop_machine import cpu_stop_init
from blkrace.kernel.watchdog import lockup_detector_init
from blkrace.kernel.workqueue import init_workqueues


# model: start_kernel() (init/main.c), the subsystems the scenarios need
def boot(execution, nr_cpus, patches=(), hotplug=True, preempt=None, watchdog=False):
    """start_kernel(), the parts that matter: workqueues, IPIs, stoppers, cpuhp.

    ``preempt=False`` boots a CONFIG_PREEMPT_NONE kernel, ``True`` a
    CONFIG_PREEMPT one (see kernel.sched); None keeps what the execution was
    given (the scenario layer sets it per variant).  ``watchdog`` starts the
    soft-lockup detector (kernel.watchdog)."""
    if preempt is not None:
        execution.set_preemptive(preempt)
    k = Kernel(execution, nr_cpus=nr_cpus, patches=patches)
    init_workqueues(k)
    init_smp(k)
    if hotplug:
        cpu_stop_init(k)
        cpuhp_init(k, default_steps())
    if watchdog:
        lockup_detector_init(k)
    return k
