"""The compiled common case of the send path (tether.engine._compiled), built from Cython.

Everything else is in pyproject.toml. The extension is optional: where it cannot be built
(no C compiler, no Python headers) the install goes on with a warning and tether runs its
pure-Python path, which counts alike, slower (the summary's ``engine`` says which ran).
"""

from typing import Any

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuild(build_ext):
    """build_ext, where a failure to compile leaves the pure-Python path (setuptools'
    ``optional`` does not catch every way a compiler can fail)."""

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 (any failure: the package works without it)
            self.warn(f"tether's compiled path was not built ({exc}); the Python path runs")


setup(
    ext_modules=cythonize(
        [Extension("tether.engine._compiled", ["src/tether/engine/_compiled.pyx"])],
        language_level=3,
    ),
    cmdclass={"build_ext": OptionalBuild},
)
