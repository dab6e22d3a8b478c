"""Software environments built before any run exists: the sweep's software images and a project's declared env."""
