"""actormq runtime: gevent actors, supervision, remoting codec, network, store files.

This package imports nothing at module level on purpose: ``python -m runtime`` must be able to
monkey-patch gevent before anything touches ``threading`` or ``socket``.
"""
