"""One module per researcher command: local, check, replay, report, init, sample (and datasets)."""
