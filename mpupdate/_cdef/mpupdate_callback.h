/* The capture (mpupdate/_csrc/capture.c): the callback MpClient calls, compiled C with the WINAPI
 * convention (stdcall on 32-bit Windows), and the per-update queues it fills. No Python runs on
 * the DLL's thread. cdef only: the C is in capture.c.
 *
 * mpupdate_callback(context, pData): context is a queue's token. It copies the notification (all
 *   fields, the data, the path) into that queue and returns 0; an unknown token (a late
 *   notification after the queue was closed, or not ours) is counted in
 *   mpupdate_stray_notifications(), a NULL pData in the queue's null_data. Never blocks for long:
 *   one process-wide lock, held for the copy.
 * mpupdate_queue_new(max_records, max_text_bytes): a queue, registered under a fresh token
 *   (mpupdate_queue_token), or NULL when out of memory. Bounded: past max_records notifications
 *   waiting to be taken, further ones are counted in dropped and not kept, except
 *   SIGUPDATE_COMPLETE and INTERNAL_FAILURE, which have MPUPDATE_RESERVED_RECORDS more places;
 *   past max_text_bytes of path text, a path is dropped (the record kept, flagged) and counted.
 * mpupdate_queue_close(q): unregister (idempotent); notifications carrying its token are stray
 *   from then on. What it already holds can still be taken.
 * mpupdate_queue_free(q): close and free.
 * mpupdate_queue_take(q, out): move everything captured so far into *out (O(1): buffers swap);
 *   returns out->count. One consumer at a time.
 * mpupdate_queue_wait(q, timeout_ms): wait (call without the GIL: cffi releases it) until the
 *   queue holds something not taken, mpupdate_queue_wake() was called, or timeout_ms passed.
 *   Returns 1 when woken by either, 0 on timeout. A wake is kept until a wait consumes it.
 * mpupdate_registered_queues(): how many queues are registered. */

int32_t WINAPI mpupdate_callback(uintptr_t context, MPCALLBACK_DATA *pData);

mpupdate_queue *mpupdate_queue_new(uint32_t max_records, uint32_t max_text_bytes);
uintptr_t mpupdate_queue_token(const mpupdate_queue *q);
void mpupdate_queue_close(mpupdate_queue *q);
void mpupdate_queue_free(mpupdate_queue *q);
uint32_t mpupdate_queue_take(mpupdate_queue *q, mpupdate_batch *out);
int mpupdate_queue_wait(mpupdate_queue *q, uint32_t timeout_ms);
void mpupdate_queue_wake(mpupdate_queue *q);
uint64_t mpupdate_stray_notifications(void);
uint32_t mpupdate_registered_queues(void);
