/* The hunting stream decoder of docs/protocol.md section 4, over the generated codec's message
   table (itp_message_info, itp_frame_crc): not generated, nothing in it names a message. */
#ifndef ITP_STREAM_H
#define ITP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "itp_codec.h"

enum itp_event { ITP_EV_FRAME, ITP_EV_GARBAGE, ITP_EV_BAD_CRC, ITP_EV_BAD_LENGTH,
    ITP_EV_UNKNOWN_MESSAGE, ITP_EV_UNSUPPORTED_VERSION, ITP_EV_UNKNOWN_FLAGS, ITP_EV_TRUNCATED };

/* kind; for a frame, the frame's bytes (valid during the call only) */
typedef void (*itp_stream_cb)(void *ctx, enum itp_event kind, const uint8_t *frame, size_t n);

#define ITP_STREAM_BUFFER (4 * ITP_MAX_FRAME)

struct itp_stream { uint8_t buf[ITP_STREAM_BUFFER]; size_t n; };

void itp_stream_init(struct itp_stream *s);
/* Feed bytes (at most ITP_MAX_FRAME per call); events are reported in stream order. */
void itp_stream_feed(struct itp_stream *s, const uint8_t *data, size_t n, itp_stream_cb cb,
                     void *ctx);

#endif
