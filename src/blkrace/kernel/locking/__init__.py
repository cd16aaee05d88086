"""Locks and waits, all on the engine's WaitQueue, all telling whom they wait for."""
