/* MpClient.dll data types, from MPCLIENT.md section 2 (evidence marks in brackets).
 *
 * This file is read twice: by cffi's cdef() and as C source by set_source(), the native fake and
 * the mingw layout check. Keep it cdef-clean: no #include, no #ifdef, no macros, and fixed-width
 * types only (never long, wchar_t or cffi's Windows typedefs: WCHAR is 16 bits on Windows and 32
 * as wchar_t on Linux). The Win32 type each field stands for is given in its comment.
 */

typedef void *MPHANDLE;                         /* [DOC] opaque manager or update handle */

typedef struct _MPSIGUPDATE_DATA {              /* [DOC] 32 bytes on x64, 24 on x86 */
    uint32_t dwPercentComplete;                 /* DWORD */
    uint32_t dwTotalUpdates;                    /* DWORD */
    uint32_t dwCurrentUpdateIndex;              /* DWORD, zero-based */
    uint32_t eType;                             /* MPSIGUPDATE_TYPE (enum) */
    uint32_t Stage;                             /* MP_UPDATE_STAGE (enum) */
    uint16_t *Path;                             /* WCHAR *, UTF-16, may be NULL */
} MPSIGUPDATE_DATA;

typedef struct _MPCALLBACK_DATA {               /* [DOC, BIN] 32 bytes on x64, 24 on x86 */
    uint32_t Notify;                            /* MPNOTIFY (enum) @0 */
    int32_t hResult;                            /* HRESULT (signed) @4 */
    uint64_t TimeStamp;                         /* ULARGE_INTEGER FILETIME @8 */
    uint32_t Type;                              /* MPCALLBACK_TYPE (enum) @16 */
    union {                                     /* [BIN] a union of 15 pointers @24 (x64) / @20 (x86); */
        MPSIGUPDATE_DATA *pSigUpdateData;       /* the member name "Data" is ours.                   */
        void *pOther;                           /* any member other than SIGUPDATE's: never read      */
    } Data;
} MPCALLBACK_DATA;

/* [BIN] HRESULT WINAPI callback(ULONG_PTR context, MPCALLBACK_DATA *pData). The return value is
 * ignored on every update path. The type's name is ours: Microsoft gives none. */
typedef int32_t (WINAPI *MPCALLBACK_FUNCTION)(uintptr_t context, MPCALLBACK_DATA *pData);

typedef struct _MPCALLBACK_INFO {               /* [BIN] 16 bytes on x64, 8 on x86; no Microsoft page */
    MPCALLBACK_FUNCTION pfnCallbackFunction;    /* @0; must not be NULL (the DLL crashes) */
    uintptr_t CallbackContext;                  /* ULONG_PTR @8 (x64) / @4 (x86), passed back */
} MPCALLBACK_INFO;

typedef struct _MPCOMPONENT_VERSION {           /* [DOC] 16 bytes */
    uint64_t Version;                           /* ULONGLONG: four 16-bit parts, major on top */
    uint64_t UpdateTime;                        /* ULARGE_INTEGER FILETIME */
} MPCOMPONENT_VERSION;

typedef struct _MPVERSION_INFO {                /* [DOC] 192 bytes on x64 and x86 */
    MPCOMPONENT_VERSION Product;
    MPCOMPONENT_VERSION Service;
    MPCOMPONENT_VERSION FileSystemFilter;
    MPCOMPONENT_VERSION Engine;
    MPCOMPONENT_VERSION ASSignature;
    MPCOMPONENT_VERSION AVSignature;
    MPCOMPONENT_VERSION NISEngine;
    MPCOMPONENT_VERSION NISSignature;
    MPCOMPONENT_VERSION Reserved[4];            /* 64 bytes: 8 * 16 + 64 = 192 */
} MPVERSION_INFO;
