"""Submit side: the batch (runs created, one scheduler call), its project checks, sync and replay."""
