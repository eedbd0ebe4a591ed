"""From per-event directions to the supernova: likelihood tables, detector acceptance, the burst fit, pointing resolution."""
