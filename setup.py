"""Build the optional C accelerators: the commit-log encoder (``runtime.store._fastlog``) and
the native fsync thread (``runtime.store._fsyncer``).

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
        ),
        Extension(
            "runtime.store._fsyncer",
            sources=["runtime/store/_fsyncer.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
