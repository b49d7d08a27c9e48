"""``mmzoo sweep``: many training runs from one base config and a grid over its keys.

:mod:`mmzoo.sweep.config` reads and validates the sweep file and expands its points,
:mod:`mmzoo.sweep.runner` trains them in worker processes (:mod:`mmzoo.sweep.worker`), skipping the
finished ones, and :mod:`mmzoo.sweep.results` writes the tables and the chart. Frozen encoders share
the feature cache across points. None of these modules imports torch in the parent process.
"""
