"""Builtin encoders, one module each: ``mlp``, ``cnn``, ``byte_gru`` and ``mel_cnn``.

Nothing is imported here, so ``"mmzoo.parts.encoders.cnn:CNNEncoder"`` loads only what it needs.
"""
