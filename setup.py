"""Build the optional native kernel of the "matrix" backend (everything else is in pyproject.toml).

The extension is optional: where it cannot be compiled the install still succeeds and the backend
falls back to SciPy's sparse product (slower, same results). OpenMP is used where the compiler
has it; the kernel then runs its row blocks on torch's own OpenMP thread pool.
"""

import os
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_FLAGS = ["-fopenmp"]


class BuildExt(build_ext):
    """Adds OpenMP flags only if a test program compiles and links with them."""

    def _has_openmp(self) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp.c")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=OPENMP_FLAGS)
                self.compiler.link_executable(
                    objs, os.path.join(tmp, "omp"), extra_postargs=OPENMP_FLAGS
                )
            except Exception:
                return False
        return True

    def build_extensions(self):
        if self.compiler.compiler_type == "unix" and self._has_openmp():
            for ext in self.extensions:
                ext.extra_compile_args += OPENMP_FLAGS
                ext.extra_link_args += OPENMP_FLAGS
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "deepinv_ei.odl.backends._spmm",
            sources=["deepinv_ei/odl/backends/_spmm.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
