"""Build the optional native kernel of the "matrix" backend (everything else is in pyproject.toml).

The extension is optional: where it cannot be compiled the install still succeeds and the backend
falls back to SciPy's sparse product (slower, same results).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "deepinv_ei.odl.backends._spmm",
            sources=["deepinv_ei/odl/backends/_spmm.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
