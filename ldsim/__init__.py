"""ldsim: the glibc 2.36 dynamic loader, simulated."""
