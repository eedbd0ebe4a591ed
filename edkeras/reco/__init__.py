"""Per-event reconstruction: datasets, Keras models, losses, metrics, training, tuning, ensembles, calibration, the classical fit."""
