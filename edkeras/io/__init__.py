"""Readers and writers: event files, predictions, the earlier system's files, DUNE TP dumps."""
