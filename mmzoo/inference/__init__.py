"""Using a trained model: ``model.predict``, ``model.embed`` and ``model.zero_shot``.

The model's methods are thin: the work is in :mod:`mmzoo.inference.predict` and
:mod:`mmzoo.inference.embed`, and the objects they return in :mod:`mmzoo.inference.results`.
Importing this package is cheap.
"""
