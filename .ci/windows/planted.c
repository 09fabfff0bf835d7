/* A planted MpClient.dll for the Windows lane's end-to-end check: it has every export, and each
 * answers 0x8BADF00D, so if it is ever loaded instead of Defender's the update fails loudly (and
 * the check also asks the Windows loader which file it loaded). */
#include <stdint.h>
#include <windows.h>

#define PLANTED ((int32_t)0x8BADF00DL)

int32_t WINAPI MpManagerOpen(uint32_t reserved, void **out) { (void)reserved; (void)out; return PLANTED; }
int32_t WINAPI MpUpdateStart(void *h, uint32_t o, void *info, void **out) { (void)h; (void)o; (void)info; (void)out; return PLANTED; }
int32_t WINAPI MpUpdateControl(void *h, uint32_t control) { (void)h; (void)control; return PLANTED; }
int32_t WINAPI MpHandleClose(void *h) { (void)h; return PLANTED; }
int32_t WINAPI MpErrorMessageFormat(void *h, int32_t hr, uint16_t **text) { (void)h; (void)hr; (void)text; return PLANTED; }
void WINAPI MpFreeMemory(void *memory) { (void)memory; }
int32_t WINAPI MpManagerVersionQuery(void *h, void *info) { (void)h; (void)info; return PLANTED; }
