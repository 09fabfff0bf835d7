/* The MpClient.dll exports we bind (MPCLIENT.md section 1), with the DLL's own signatures.
 *
 * In the compiled module these names are static stubs from mpupdate/_csrc/loader.c that call the
 * export resolved at run time, or return MPUPDATE_E_NOT_LOADED (0x8007007E) when no library is
 * loaded, MPUPDATE_E_PROC_NOT_FOUND (0x8007007F) when the loaded one lacks the export.
 * All return an HRESULT except MpFreeMemory. cffi releases the GIL around each call. */

int32_t MpManagerOpen(uint32_t dwReserved, MPHANDLE *phMpHandle);
int32_t MpUpdateStart(MPHANDLE hMpHandle, uint32_t dwUpdateOptions,
                      MPCALLBACK_INFO *pCallbackInfo, MPHANDLE *phUpdateHandle);
int32_t MpUpdateControl(MPHANDLE hMpHandle, uint32_t control);
int32_t MpHandleClose(MPHANDLE hMpHandle);
int32_t MpErrorMessageFormat(MPHANDLE hMpHandle, int32_t hr, uint16_t **ppszText);
void MpFreeMemory(void *pMemory);
int32_t MpManagerVersionQuery(MPHANDLE hMpHandle, MPVERSION_INFO *pInfo);
