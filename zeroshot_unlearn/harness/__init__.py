"""The benchmark harness: protocol suites, the checkpoints and retrain references they train, the demo.

The library never imports this package; the command line's ``demo``, ``bench``, ``table`` and
``train`` commands (and ``audit --data digits``, for its retrain reference) do, and so do the
research scripts. ``specs`` says how each benchmark architecture is trained, ``training`` trains
it (and retrain references) on the shared engine, ``bench`` runs the protocol's suites and
``demo`` is the first command of the README.
"""
