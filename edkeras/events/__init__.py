"""Events: the event file, the simulator, readers of DUNE TP dumps and the earlier system's NPZ files, splits, checks."""
