/* pyconfig.h for compiling a limited-API (abi3) extension for 64-bit Windows CPython with
 * mingw-w64, against another platform's CPython headers of the same minor version.
 *
 * CPython's own Windows pyconfig.h (PC/pyconfig.h) is written for MSVC and is not in the Linux
 * headers, so this file says only what the limited-API headers ask of the platform. It is used by
 * .ci/windows/build-module alone: never by a user's build. */
#ifndef MPUPDATE_WINDOWS_PYCONFIG_H
#define MPUPDATE_WINDOWS_PYCONFIG_H

#if !defined(_WIN64) || !defined(__MINGW64__)
#  error "this pyconfig.h is for x86_64-w64-mingw32 only"
#endif

#define MS_WIN32
#define MS_WIN64
#define MS_WINDOWS
#define NT_THREADS
#define WITH_THREAD

/* The module links to python3.dll and imports its symbols (PyAPI_FUNC = __declspec(dllimport)). */
#define Py_ENABLE_SHARED 1
#define HAVE_DECLSPEC_DLL

/* LLP64: long is 32 bits, pointers and size_t 64. */
#define SIZEOF_SHORT 2
#define SIZEOF_INT 4
#define SIZEOF_LONG 4
#define SIZEOF_LONG_LONG 8
#define SIZEOF_FLOAT 4
#define SIZEOF_DOUBLE 8
#define SIZEOF_VOID_P 8
#define SIZEOF_SIZE_T 8
#define SIZEOF_TIME_T 8
#define SIZEOF_WCHAR_T 2
#define SIZEOF_OFF_T 4
#define SIZEOF_FPOS_T 8
#define SIZEOF_HKEY 8
#define SIZEOF__BOOL 1
#define ALIGNOF_SIZE_T 8
#define ALIGNOF_LONG 4
#define ALIGNOF_MAX_ALIGN_T 8

#define HAVE_UINTPTR_T 1
#define HAVE_INTPTR_T 1
#define HAVE_WCHAR_H 1
#define HAVE_STDARG_PROTOTYPES 1
#define HAVE_SYS_STAT_H 1
#define HAVE_ERRNO_H 1
#define HAVE_SIGNAL_H 1
#define HAVE_FCNTL_H 1
#define HAVE_DIRECT_H 1
#define HAVE_IO_H 1
#define DONT_HAVE_SIG_ALARM
#define DONT_HAVE_SIG_PAUSE
#define LONG_BIT 32
#define WORD_BIT 32
#define PY_LONG_LONG long long
#define PLATFORM "win32"

#endif
