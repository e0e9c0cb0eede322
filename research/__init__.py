"""Research scripts behind benchmarks/RESULTS.md: measurements, not part of the library."""
