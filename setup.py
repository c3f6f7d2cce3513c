"""Build the optional C accelerator of the commit-log encoder (``runtime.store._fastlog``).

Everything else is in pyproject.toml. ``optional=True``: without a compiler (or zlib headers)
the build skips the extension and ``runtime.store.commitlog`` uses its pure-Python loop.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "runtime.store._fastlog",
            sources=["runtime/store/_fastlog.c"],
            libraries=["z"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
