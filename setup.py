from setuptools import setup; setup(cffi_modules=["build_mpclient.py:ffibuilder"])  # noqa: E702
