/* Windows layout check, compiled by .ci/mingw-check with x86_64-w64-mingw32-gcc and
 * i686-w64-mingw32-gcc (-Werror): our declarations, run-time loader and notification capture
 * must build for Windows, the structures must have the layouts MPCLIENT.md section 2 gives for
 * the shipped DLL, and the compiled callback must be of the WINAPI callback type. */

#include "../../mpupdate/_csrc/prelude.h"
#include "../../mpupdate/_cdef/mpclient_types.h"
#include "../../mpupdate/_cdef/mpupdate_capture_types.h"
#include "../../mpupdate/_csrc/loader.c"
#include "../../mpupdate/_csrc/capture.c"

#if defined(_WIN64)
#  define PTR 8
_Static_assert(sizeof(MPCALLBACK_INFO) == 16, "MPCALLBACK_INFO is 16 bytes on x64");
_Static_assert(sizeof(MPCALLBACK_DATA) == 32, "MPCALLBACK_DATA is 32 bytes on x64");
_Static_assert(sizeof(MPSIGUPDATE_DATA) == 32, "MPSIGUPDATE_DATA is 32 bytes on x64");
_Static_assert(offsetof(MPCALLBACK_DATA, Data) == 24, "the union is at 24 on x64");
_Static_assert(offsetof(MPSIGUPDATE_DATA, Path) == 24, "Path is at 24 on x64");
#elif defined(_WIN32)
#  define PTR 4
_Static_assert(sizeof(MPCALLBACK_INFO) == 8, "MPCALLBACK_INFO is 8 bytes on x86");
_Static_assert(sizeof(MPCALLBACK_DATA) == 24, "MPCALLBACK_DATA is 24 bytes on x86");
_Static_assert(sizeof(MPSIGUPDATE_DATA) == 24, "MPSIGUPDATE_DATA is 24 bytes on x86");
_Static_assert(offsetof(MPCALLBACK_DATA, Data) == 20, "the union is at 20 on x86");
_Static_assert(offsetof(MPSIGUPDATE_DATA, Path) == 20, "Path is at 20 on x86");
#else
#  error "compile this file for Windows only"
#endif

_Static_assert(offsetof(MPCALLBACK_INFO, pfnCallbackFunction) == 0, "callback pointer first");
_Static_assert(offsetof(MPCALLBACK_INFO, CallbackContext) == PTR, "context after the pointer");
_Static_assert(offsetof(MPCALLBACK_DATA, Notify) == 0, "Notify @0");
_Static_assert(offsetof(MPCALLBACK_DATA, hResult) == 4, "hResult @4");
_Static_assert(offsetof(MPCALLBACK_DATA, TimeStamp) == 8, "TimeStamp @8");
_Static_assert(offsetof(MPCALLBACK_DATA, Type) == 16, "Type @16");
_Static_assert(sizeof(MPCOMPONENT_VERSION) == 16, "MPCOMPONENT_VERSION is 16 bytes");
_Static_assert(sizeof(MPVERSION_INFO) == 192, "MPVERSION_INFO is 192 bytes on both");
_Static_assert(offsetof(MPVERSION_INFO, NISSignature) == 112, "eight components, then Reserved");
_Static_assert(sizeof(((MPCALLBACK_DATA *)0)->hResult) == 4, "HRESULT is 32 bits");
_Static_assert((int32_t)-1 < 0, "HRESULT is signed");

/* The callback type is WINAPI: a stdcall function converts to it without a cast. With
 * -DMPUPDATE_EXPECT_CONVENTION_MISMATCH a cdecl one is assigned instead, which must not compile
 * on x86 (where the conventions differ): CI checks that this build fails. */
static int32_t WINAPI stdcall_callback(uintptr_t context, MPCALLBACK_DATA *data)
{
    (void)context;
    (void)data;
    return 0;
}

#ifdef MPUPDATE_EXPECT_CONVENTION_MISMATCH
static int32_t __cdecl cdecl_callback(uintptr_t context, MPCALLBACK_DATA *data)
{
    (void)context;
    (void)data;
    return 0;
}
MPCALLBACK_FUNCTION mpupdate_wrong_convention = cdecl_callback;
#endif

MPCALLBACK_FUNCTION mpupdate_layout_check_callback = stdcall_callback;
/* The callback the compiled module hands MpClient: WINAPI too (on x86 a cdecl definition would
 * make this an incompatible-pointer error under -Werror). */
MPCALLBACK_FUNCTION mpupdate_layout_check_capture = mpupdate_callback;

/* The exports' convention, pinned as the callback's is: each loader typedef must accept a WINAPI
 * function of the DLL's signature without a cast (on x86 a typedef that lost WINAPI would make
 * these initializers incompatible-pointer errors under -Werror). With
 * -DMPUPDATE_EXPECT_EXPORT_MISMATCH a cdecl function is assigned instead, which must not compile
 * on x86: CI checks that this build fails. */
static int32_t WINAPI ref_open(uint32_t reserved, MPHANDLE *out)
{
    (void)reserved;
    (void)out;
    return 0;
}
static int32_t WINAPI ref_start(MPHANDLE h, uint32_t options, MPCALLBACK_INFO *info, MPHANDLE *out)
{
    (void)h;
    (void)options;
    (void)info;
    (void)out;
    return 0;
}
static int32_t WINAPI ref_control(MPHANDLE h, uint32_t control)
{
    (void)h;
    (void)control;
    return 0;
}
static int32_t WINAPI ref_close(MPHANDLE h)
{
    (void)h;
    return 0;
}
static int32_t WINAPI ref_format(MPHANDLE h, int32_t hr, uint16_t **text)
{
    (void)h;
    (void)hr;
    (void)text;
    return 0;
}
static void WINAPI ref_free(void *memory)
{
    (void)memory;
}
static int32_t WINAPI ref_version(MPHANDLE h, MPVERSION_INFO *info)
{
    (void)h;
    (void)info;
    return 0;
}

mpupdate_MpManagerOpen_fn mpupdate_check_open = ref_open;
mpupdate_MpUpdateStart_fn mpupdate_check_start = ref_start;
mpupdate_MpUpdateControl_fn mpupdate_check_control = ref_control;
mpupdate_MpHandleClose_fn mpupdate_check_close = ref_close;
mpupdate_MpErrorMessageFormat_fn mpupdate_check_format = ref_format;
mpupdate_MpFreeMemory_fn mpupdate_check_free = ref_free;
mpupdate_MpManagerVersionQuery_fn mpupdate_check_version = ref_version;

#ifdef MPUPDATE_EXPECT_EXPORT_MISMATCH
static int32_t __cdecl cdecl_close(MPHANDLE h)
{
    (void)h;
    return 0;
}
mpupdate_MpHandleClose_fn mpupdate_wrong_export_convention = cdecl_close;
#endif

/* Take every loader function's address, so -Werror=unused-function sees them used. */
void *mpupdate_layout_check_uses[] = {
    (void *)(uintptr_t)mpupdate_load,
    (void *)(uintptr_t)mpupdate_unload,
    (void *)(uintptr_t)mpupdate_is_loaded,
    (void *)(uintptr_t)mpupdate_missing_exports,
    (void *)(uintptr_t)mpupdate_load_error,
    (void *)(uintptr_t)mpupdate_export_name,
    (void *)(uintptr_t)mpupdate_utf16_length,
    (void *)(uintptr_t)MpManagerOpen,
    (void *)(uintptr_t)MpUpdateStart,
    (void *)(uintptr_t)MpUpdateControl,
    (void *)(uintptr_t)MpHandleClose,
    (void *)(uintptr_t)MpErrorMessageFormat,
    (void *)(uintptr_t)MpFreeMemory,
    (void *)(uintptr_t)MpManagerVersionQuery,
    (void *)(uintptr_t)mpupdate_queue_new,
    (void *)(uintptr_t)mpupdate_queue_token,
    (void *)(uintptr_t)mpupdate_queue_close,
    (void *)(uintptr_t)mpupdate_queue_free,
    (void *)(uintptr_t)mpupdate_queue_take,
    (void *)(uintptr_t)mpupdate_queue_wait,
    (void *)(uintptr_t)mpupdate_queue_wake,
    (void *)(uintptr_t)mpupdate_stray_notifications,
    (void *)(uintptr_t)mpupdate_registered_queues,
};
