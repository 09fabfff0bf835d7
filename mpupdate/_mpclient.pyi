# Type stub for mpupdate._mpclient, the compiled cffi module built by build_mpclient.py.
#
# cffi generates no stubs; this one is written from mpupdate/_cdef/*.h and checked against the
# compiled module by tests/unit/test_architecture.py (every function of `lib` declared here with
# the parameter count and types its C declaration implies, and nothing else; every `ffi` member
# declared here present at run time). The C-to-Python mapping cffi applies:
#
#   integer types (int32_t, uint32_t, uintptr_t, size_t, int)  ->  int
#   `const char *` we pass in                                   ->  bytes
#   any other pointer, a struct, an array, a function pointer   ->  _CData (Any)
#   void result                                                  ->  None
#
# _CData is Any: cffi's objects carry their C type only at run time, so a pointer is checked by
# cffi when the call is made, not here; argument counts and the integer and bytes arguments are
# checked statically. The class names below (_FFI, _Lib, _CType, _Buffer)
# describe objects of _cffi_backend's types; they do not exist in the compiled module.

import sys
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, Union, final, overload

_CData = Any
"""A cffi cdata object: a pointer, struct, array or function pointer (cffi's ``ffi.CData``)."""

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
_OnError = Callable[
    [Optional[type[BaseException]], Optional[BaseException], Optional[TracebackType]], Any
]

@final
class _CType:
    """A C type as cffi describes it (``ffi.typeof``); its ``kind`` says which attributes exist."""

    kind: str
    """"primitive", "pointer", "array", "void", "struct", "union", "enum", "function"."""
    cname: str
    item: Optional[_CType]
    length: Optional[int]
    fields: Optional[list[tuple[str, Any]]]
    args: tuple[_CType, ...]
    result: _CType
    ellipsis: bool
    abi: int

@final
class _Buffer:
    """``ffi.buffer(cdata, size)``: the raw bytes of C memory, read and written in place."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: Union[int, slice]) -> bytes: ...
    def __setitem__(self, index: Union[int, slice], value: bytes) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class _FFI:
    """The compiled module's ``ffi``: its C types, and cffi's operations on C data."""

    CData: type
    CType: type
    NULL: _CData
    error: type[Exception]
    errno: int
    RTLD_LAZY: int
    RTLD_NOW: int
    RTLD_GLOBAL: int
    RTLD_LOCAL: int
    if sys.platform != "win32":
        RTLD_NODELETE: int
        RTLD_NOLOAD: int
    if sys.platform == "linux":
        RTLD_DEEPBIND: int
    def new(self, cdecl: Union[str, _CType], init: Any = ..., /) -> _CData: ...
    def new_allocator(
        self,
        alloc: Optional[Callable[[int], _CData]] = None,
        free: Optional[Callable[[_CData], Any]] = None,
        should_clear_after_alloc: bool = True,
    ) -> Callable[..., _CData]: ...
    def cast(self, cdecl: Union[str, _CType], value: Union[_CData, int], /) -> _CData: ...
    def string(self, cdata: _CData, maxlen: int = -1) -> bytes:
        """The NUL-terminated ``char`` data at ``cdata`` (our declarations have no wchar_t, the one
        case where cffi answers str)."""
    def unpack(self, cdata: _CData, length: int) -> Union[bytes, str, list[Any]]: ...
    def buffer(self, cdata: _CData, size: int = -1) -> _Buffer: ...
    @overload
    def from_buffer(self, python_buffer: Any, /, require_writable: bool = False) -> _CData: ...
    @overload
    def from_buffer(
        self, cdecl: Union[str, _CType], python_buffer: Any, /, require_writable: bool = False
    ) -> _CData: ...
    def memmove(self, dest: Any, src: Any, n: int) -> None: ...
    def typeof(self, cdecl: Union[str, _CData], /) -> _CType: ...
    def sizeof(self, cdecl: Union[str, _CType, _CData], /) -> int: ...
    def alignof(self, cdecl: Union[str, _CType, _CData], /) -> int: ...
    def offsetof(self, cdecl: Union[str, _CType], *fields_or_indexes: Union[str, int]) -> int: ...
    def addressof(self, cdata: _CData, *fields_or_indexes: Union[str, int]) -> _CData: ...
    def getctype(self, cdecl: Union[str, _CType], replace_with: str = "") -> str: ...
    def new_handle(self, python_object: object, /) -> _CData: ...
    def from_handle(self, python_handle: _CData, /) -> Any: ...
    def gc(
        self, cdata: _CData, destructor: Optional[Callable[[_CData], Any]], size: int = 0
    ) -> _CData: ...
    def release(self, cdata: _CData, /) -> None: ...
    @overload
    def callback(
        self,
        cdecl: Union[str, _CType],
        python_callable: None = None,
        error: Any = None,
        onerror: Optional[_OnError] = None,
    ) -> Callable[[Callable[..., Any]], _CData]: ...
    @overload
    def callback(
        self,
        cdecl: Union[str, _CType],
        python_callable: Callable[..., Any],
        error: Any = None,
        onerror: Optional[_OnError] = None,
    ) -> _CData: ...
    def def_extern(
        self, name: Optional[str] = None, error: Any = None, onerror: Optional[_OnError] = None
    ) -> Callable[[_F], _F]: ...
    def dlopen(self, libpath: Optional[str], flags: int = 0) -> Any: ...
    def dlclose(self, lib: Any, /) -> None: ...
    def init_once(self, func: Callable[[], _T], tag: str) -> _T: ...
    def list_types(self) -> tuple[list[str], list[str], list[str]]: ...
    def integer_const(self, name: str, /) -> int: ...

@final
class _Lib:
    """The compiled module's ``lib``: the functions of mpupdate/_cdef/*.h. cffi releases the GIL
    around each call."""

    # mpclient_exports.h: MpClient.dll's exports, as static stubs calling the loaded library
    # (0x8007007E when none is loaded, 0x8007007F when it lacks the export). HRESULTs are signed.
    def MpManagerOpen(self, dwReserved: int, phMpHandle: _CData, /) -> int: ...
    def MpUpdateStart(
        self,
        hMpHandle: _CData,
        dwUpdateOptions: int,
        pCallbackInfo: _CData,
        phUpdateHandle: _CData,
        /,
    ) -> int: ...
    def MpUpdateControl(self, hMpHandle: _CData, control: int, /) -> int: ...
    def MpHandleClose(self, hMpHandle: _CData, /) -> int: ...
    def MpErrorMessageFormat(self, hMpHandle: _CData, hr: int, ppszText: _CData, /) -> int: ...
    def MpFreeMemory(self, pMemory: _CData, /) -> None: ...
    def MpManagerVersionQuery(self, hMpHandle: _CData, pInfo: _CData, /) -> int: ...

    # mpupdate_loader.h: our run-time loader, one library per process.
    def mpupdate_load(self, path_utf8: bytes, /) -> int: ...
    def mpupdate_unload(self) -> int: ...
    def mpupdate_is_loaded(self) -> int: ...
    def mpupdate_missing_exports(self) -> int: ...
    def mpupdate_load_error(self) -> _CData: ...
    def mpupdate_export_name(self, index: int, /) -> _CData: ...
    def mpupdate_utf16_length(self, text: _CData, max_units: int, /) -> int: ...

    # mpupdate_callback.h: the compiled callback (pass ffi.addressof(lib, "mpupdate_callback") to
    # MpClient) and the capture queues it fills. A queue is an mpupdate_queue * (_CData).
    def mpupdate_callback(self, context: int, pData: _CData, /) -> int: ...
    def mpupdate_queue_new(self, max_records: int, max_text_bytes: int, /) -> _CData: ...
    def mpupdate_queue_token(self, q: _CData, /) -> int: ...
    def mpupdate_queue_close(self, q: _CData, /) -> None: ...
    def mpupdate_queue_free(self, q: _CData, /) -> None: ...
    def mpupdate_queue_take(self, q: _CData, out: _CData, /) -> int: ...
    def mpupdate_queue_wait(self, q: _CData, timeout_ms: int, /) -> int: ...
    def mpupdate_queue_wake(self, q: _CData, /) -> None: ...
    def mpupdate_stray_notifications(self) -> int: ...
    def mpupdate_registered_queues(self) -> int: ...
    MPUPDATE_RECORD_HAS_DATA: int
    MPUPDATE_RECORD_HAS_PATH: int
    MPUPDATE_RECORD_PATH_CUT: int
    MPUPDATE_RECORD_PATH_DROPPED: int
    MPUPDATE_PATH_MAX_UNITS: int
    MPUPDATE_RESERVED_RECORDS: int

ffi: _FFI
lib: _Lib
