# The compiled cffi module (built from build_mpclient.py); cffi generates no stubs.
from typing import Any

ffi: Any
lib: Any
