"""Tools for tests and benchmarks only (a Bot API stand-in, a multi-process cluster harness).

Not part of the installed package (pyproject's setuptools `include` leaves it out) and never
imported by the bot itself (an import contract in pyproject.toml keeps it so).
"""
