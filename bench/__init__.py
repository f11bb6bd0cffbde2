"""gwm benchmarks: run with ``bench/run`` or ``python -m bench.<name>`` (see README.md)."""
