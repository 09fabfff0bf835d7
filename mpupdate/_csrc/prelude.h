/* What mpclient_types.h and loader.c need before them, as C (never given to cdef). */
#ifdef _WIN32
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>
#else
   /* WINAPI is stdcall only on 32-bit Windows; elsewhere it is the default convention. */
#  ifndef WINAPI
#    define WINAPI
#  endif
#  ifndef __stdcall
#    define __stdcall
#  endif
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
