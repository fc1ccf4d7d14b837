"""The one native module (compliance/_wordscan.c, the word scanner's inner loops); everything
else is in pyproject.toml. Optional: without a C compiler the scanner runs its Python paths."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("compliance._wordscan", ["compliance/_wordscan.c"],
                             extra_compile_args=["-O2", "-std=c11"], optional=True)])
