"""spu-lite's tools: the command line, benchmarks, precision, cost and spu.check."""
