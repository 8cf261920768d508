"""The compiled common case of the send path (tether.engine._compiled), built from Cython.

Everything else is in pyproject.toml. The extension is optional: where it cannot be built
(no C compiler, no Python headers) the install goes on and tether runs its pure-Python
path, which gives the same results, slower (the summary says which engine ran).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "tether.engine._compiled",
                ["src/tether/engine/_compiled.pyx"],
                extra_compile_args=["-O2"],
                optional=True,
            )
        ],
        language_level=3,
    )
)
