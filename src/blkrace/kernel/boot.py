"""Booting a model machine: the subsystems every scenario with CPU hotplug needs.

Kernel baseline: v5.8 (init/main.c).  kernel/smp.c's own baseline is v3.16,
seed 003's kernel, with the later fixes as toggles; a v5.8 boot applies the
two that v5.8 has (the flush at CPU_DYING, 8d056c48e486, v3.16; an async csd
unlocked before its call, 8053871d0f7f, v4.0).  Seed 003's scenario boots
v3.16's smp.c (``smp="v3.16"``) and toggles them itself.
"""

from __future__ import annotations

from blkrace.kernel.cpuhp import cpuhp_init, default_steps
from blkrace.kernel.machine import Kernel
from blkrace.kernel.smp import ASYNC_UNLOCK_FIRST, FLUSH_BEFORE_OFFLINE, init_smp
from blkrace.kernel.stop_machine import cpu_stop_init
from blkrace.kernel.watchdog import lockup_detector_init
from blkrace.kernel.workqueue import init_workqueues

# kernel/smp.c as v5.8 has it, on top of the model's v3.16 smp.c
SMP_V5_8 = frozenset({FLUSH_BEFORE_OFFLINE.name, ASYNC_UNLOCK_FIRST.name})
SMP_BASELINES = {"v5.8": SMP_V5_8, "v3.16": frozenset()}


# model: start_kernel() (init/main.c), the subsystems the scenarios need
def boot(execution, nr_cpus, patches=(), hotplug=True, preempt=None, watchdog=False, smp="v5.8"):
    """start_kernel(), the parts that matter: workqueues, IPIs, stoppers, cpuhp.

    ``preempt=False`` boots a CONFIG_PREEMPT_NONE kernel, ``True`` a
    CONFIG_PREEMPT one (see kernel.sched); None keeps what the execution was
    given (the scenario layer sets it per variant).  ``watchdog`` starts the
    soft-lockup detector (kernel.watchdog).  ``smp`` is kernel/smp.c's
    version ("v5.8", or "v3.16" for seed 003); ``patches`` apply on top."""
    if smp not in SMP_BASELINES:
        raise ValueError(f"unknown kernel/smp.c baseline {smp!r} (valid: {', '.join(SMP_BASELINES)})")
    if preempt is not None:
        execution.set_preemptive(preempt)
    k = Kernel(execution, nr_cpus=nr_cpus, patches=frozenset(patches) | SMP_BASELINES[smp])
    init_workqueues(k)
    init_smp(k)
    if hotplug:
        cpu_stop_init(k)
        cpuhp_init(k, default_steps())
    if watchdog:
        lockup_detector_init(k)
    return k
