/* mpupdate run-time loader for MpClient.dll (or anything with its exports, such as the native fake).
 *
 * Compiled after mpclient_types.h by build_mpclient.py, and on its own by the mingw layout check.
 * Nothing here is linked against MpClient: every export is resolved after an explicit,
 * absolute-path load, and a stub answers a clear HRESULT when nothing (or not that export) is
 * loaded, so a call before loading never crashes. */

#define MPUPDATE_E_NOT_LOADED ((int32_t)0x8007007EL)     /* HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND) */
#define MPUPDATE_E_PROC_NOT_FOUND ((int32_t)0x8007007FL) /* HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND) */
#define MPUPDATE_E_INVALID_OPERATION ((int32_t)0x800710DDL) /* already loaded / nothing to unload */
#define MPUPDATE_E_INVALIDARG ((int32_t)0x80070057L)

typedef int32_t (WINAPI *mpupdate_MpManagerOpen_fn)(uint32_t, MPHANDLE *);
typedef int32_t (WINAPI *mpupdate_MpUpdateStart_fn)(MPHANDLE, uint32_t, MPCALLBACK_INFO *, MPHANDLE *);
typedef int32_t (WINAPI *mpupdate_MpUpdateControl_fn)(MPHANDLE, uint32_t);
typedef int32_t (WINAPI *mpupdate_MpHandleClose_fn)(MPHANDLE);
typedef int32_t (WINAPI *mpupdate_MpErrorMessageFormat_fn)(MPHANDLE, int32_t, uint16_t **);
typedef void (WINAPI *mpupdate_MpFreeMemory_fn)(void *);
typedef int32_t (WINAPI *mpupdate_MpManagerVersionQuery_fn)(MPHANDLE, MPVERSION_INFO *);

static struct {
    void *module;
    mpupdate_MpManagerOpen_fn MpManagerOpen;
    mpupdate_MpUpdateStart_fn MpUpdateStart;
    mpupdate_MpUpdateControl_fn MpUpdateControl;
    mpupdate_MpHandleClose_fn MpHandleClose;
    mpupdate_MpErrorMessageFormat_fn MpErrorMessageFormat;
    mpupdate_MpFreeMemory_fn MpFreeMemory;
    mpupdate_MpManagerVersionQuery_fn MpManagerVersionQuery;
} mpupdate_dll;

static char mpupdate_error_text[512];

static void mpupdate_set_error(const char *text)
{
    size_t n = 0;
    if (text != NULL) {
        while (text[n] != '\0' && n < sizeof(mpupdate_error_text) - 1) {
            mpupdate_error_text[n] = text[n];
            n++;
        }
    }
    mpupdate_error_text[n] = '\0';
}

#ifdef _WIN32
#ifndef LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR
#define LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR 0x00000100
#endif
#ifndef LOAD_LIBRARY_SEARCH_SYSTEM32
#define LOAD_LIBRARY_SEARCH_SYSTEM32 0x00000800
#endif

static void *mpupdate_symbol(const char *name)
{
    /* GetProcAddress returns FARPROC; go through an integer to keep -Wcast-function-type quiet. */
    return (void *)(uintptr_t)GetProcAddress((HMODULE)mpupdate_dll.module, name);
}

static int32_t mpupdate_open_module(const char *path_utf8)
{
    HMODULE module;
    DWORD err;
    wchar_t *wide;
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path_utf8, -1, NULL, 0);
    if (n <= 0 || n > 32768) {
        mpupdate_set_error("the path is not valid UTF-8 or is longer than 32767 characters");
        return MPUPDATE_E_INVALIDARG;
    }
    wide = (wchar_t *)malloc((size_t)n * sizeof(wchar_t));
    if (wide == NULL) {
        mpupdate_set_error("out of memory");
        return (int32_t)0x8007000EL; /* E_OUTOFMEMORY */
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path_utf8, -1, wide, n);
    module = LoadLibraryExW(wide, NULL,
                            LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32);
    err = GetLastError();
    free(wide);
    if (module == NULL) {
        mpupdate_set_error("LoadLibraryExW failed");
        return (int32_t)(err == 0 ? 0x80004005UL : (0x80070000UL | (err & 0xFFFFUL)));
    }
    mpupdate_dll.module = (void *)module;
    return 0;
}

static void mpupdate_close_module(void)
{
    FreeLibrary((HMODULE)mpupdate_dll.module);
}
#else
#include <dlfcn.h>

static void *mpupdate_symbol(const char *name)
{
    return dlsym(mpupdate_dll.module, name);
}

static int32_t mpupdate_open_module(const char *path_utf8)
{
    void *module = dlopen(path_utf8, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        mpupdate_set_error(dlerror());
        return MPUPDATE_E_NOT_LOADED;
    }
    mpupdate_dll.module = module;
    return 0;
}

static void mpupdate_close_module(void)
{
    dlclose(mpupdate_dll.module);
}
#endif

static int32_t mpupdate_load(const char *path_utf8)
{
    int32_t hr;
    if (path_utf8 == NULL || path_utf8[0] == '\0') {
        mpupdate_set_error("no path given");
        return MPUPDATE_E_INVALIDARG;
    }
    if (mpupdate_dll.module != NULL) {
        mpupdate_set_error("a library is already loaded; unload it first");
        return MPUPDATE_E_INVALID_OPERATION;
    }
    hr = mpupdate_open_module(path_utf8);
    if (hr != 0)
        return hr;
    mpupdate_set_error("");
    /* Function pointers go through an integer: ISO C has no object-to-function pointer cast. */
    mpupdate_dll.MpManagerOpen =
        (mpupdate_MpManagerOpen_fn)(uintptr_t)mpupdate_symbol("MpManagerOpen");
    mpupdate_dll.MpUpdateStart =
        (mpupdate_MpUpdateStart_fn)(uintptr_t)mpupdate_symbol("MpUpdateStart");
    mpupdate_dll.MpUpdateControl =
        (mpupdate_MpUpdateControl_fn)(uintptr_t)mpupdate_symbol("MpUpdateControl");
    mpupdate_dll.MpHandleClose =
        (mpupdate_MpHandleClose_fn)(uintptr_t)mpupdate_symbol("MpHandleClose");
    mpupdate_dll.MpErrorMessageFormat =
        (mpupdate_MpErrorMessageFormat_fn)(uintptr_t)mpupdate_symbol("MpErrorMessageFormat");
    mpupdate_dll.MpFreeMemory =
        (mpupdate_MpFreeMemory_fn)(uintptr_t)mpupdate_symbol("MpFreeMemory");
    mpupdate_dll.MpManagerVersionQuery =
        (mpupdate_MpManagerVersionQuery_fn)(uintptr_t)mpupdate_symbol("MpManagerVersionQuery");
    return 0;
}

static int32_t mpupdate_unload(void)
{
    if (mpupdate_dll.module == NULL)
        return MPUPDATE_E_INVALID_OPERATION;
    mpupdate_close_module();
    memset(&mpupdate_dll, 0, sizeof(mpupdate_dll));
    return 0;
}

static int mpupdate_is_loaded(void)
{
    return mpupdate_dll.module != NULL;
}

static uint32_t mpupdate_missing_exports(void)
{
    uint32_t missing = 0;
    if (mpupdate_dll.module == NULL)
        return 0x7F;
    if (mpupdate_dll.MpManagerOpen == NULL) missing |= 1u << 0;
    if (mpupdate_dll.MpUpdateStart == NULL) missing |= 1u << 1;
    if (mpupdate_dll.MpUpdateControl == NULL) missing |= 1u << 2;
    if (mpupdate_dll.MpHandleClose == NULL) missing |= 1u << 3;
    if (mpupdate_dll.MpErrorMessageFormat == NULL) missing |= 1u << 4;
    if (mpupdate_dll.MpFreeMemory == NULL) missing |= 1u << 5;
    if (mpupdate_dll.MpManagerVersionQuery == NULL) missing |= 1u << 6;
    return missing;
}

static const char *mpupdate_load_error(void)
{
    return mpupdate_error_text;
}

static size_t mpupdate_utf16_length(const uint16_t *text, size_t max_units)
{
    size_t n = 0;
    if (text == NULL)
        return 0;
    while (n < max_units && text[n] != 0)
        n++;
    return n;
}

/* What a stub answers when its export is not there: nothing loaded, or loaded without it. */
#define MPUPDATE_MISSING_EXPORT() \
    (mpupdate_dll.module == NULL ? MPUPDATE_E_NOT_LOADED : MPUPDATE_E_PROC_NOT_FOUND)

static int32_t MpManagerOpen(uint32_t dwReserved, MPHANDLE *phMpHandle)
{
    if (mpupdate_dll.MpManagerOpen == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpManagerOpen(dwReserved, phMpHandle);
}

static int32_t MpUpdateStart(MPHANDLE hMpHandle, uint32_t dwUpdateOptions,
                             MPCALLBACK_INFO *pCallbackInfo, MPHANDLE *phUpdateHandle)
{
    if (mpupdate_dll.MpUpdateStart == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpUpdateStart(hMpHandle, dwUpdateOptions, pCallbackInfo, phUpdateHandle);
}

static int32_t MpUpdateControl(MPHANDLE hMpHandle, uint32_t control)
{
    if (mpupdate_dll.MpUpdateControl == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpUpdateControl(hMpHandle, control);
}

static int32_t MpHandleClose(MPHANDLE hMpHandle)
{
    if (mpupdate_dll.MpHandleClose == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpHandleClose(hMpHandle);
}

static int32_t MpErrorMessageFormat(MPHANDLE hMpHandle, int32_t hr, uint16_t **ppszText)
{
    if (mpupdate_dll.MpErrorMessageFormat == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpErrorMessageFormat(hMpHandle, hr, ppszText);
}

static void MpFreeMemory(void *pMemory)
{
    /* Without the export there is nothing that could have allocated pMemory. */
    if (mpupdate_dll.MpFreeMemory != NULL)
        mpupdate_dll.MpFreeMemory(pMemory);
}

static int32_t MpManagerVersionQuery(MPHANDLE hMpHandle, MPVERSION_INFO *pInfo)
{
    if (mpupdate_dll.MpManagerVersionQuery == NULL)
        return MPUPDATE_MISSING_EXPORT();
    return mpupdate_dll.MpManagerVersionQuery(hMpHandle, pInfo);
}
