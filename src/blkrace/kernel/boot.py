"""Booting a model machine: the subsystems every scenario with CPU hotplug needs."""

from __future__ import annotations

from blkrace.kernel.cpuhp import cpuhp_init, default_steps
from blkrace.kernel.machine import Kernel
from blkrace.kernel.smp import init_smp
from blkrace.kernel.stop_machine import cpu_stop_init
from blkrace.kernel.workqueue import init_workqueues


def boot(execution, nr_cpus, patches=(), hotplug=True):
    """start_kernel(), the parts that matter: workqueues, IPIs, stoppers, cpuhp."""
    k = Kernel(execution, nr_cpus=nr_cpus, patches=patches)
    init_workqueues(k)
    init_smp(k)
    if hotplug:
        cpu_stop_init(k)
        cpuhp_init(k, default_steps())
    return k
