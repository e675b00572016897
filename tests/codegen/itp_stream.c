/* See itp_stream.h. Mirrors the algorithm of docs/protocol.md section 4 step by step. */
#include "itp_stream.h"

#include <string.h>

static size_t find_magic(const uint8_t *b, size_t from, size_t n) {
    for (size_t i = from; i + 1 < n; i++)
        if (b[i] == ITP_MAGIC0 && b[i + 1] == ITP_MAGIC1) return i;
    return (size_t)-1;
}

static uint32_t rd(const uint8_t *p, int k) {
    uint32_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* 0 when the header at b is plausible (and *end is the candidate's end), else the event. */
static int header_check(const uint8_t *b, size_t at, size_t *end) {
    uint8_t version = b[at + ITP_OFF_VERSION], flags = b[at + ITP_OFF_FLAGS];
    uint16_t length = (uint16_t)rd(b + at + ITP_OFF_LENGTH, 2);
    const struct itp_message_info *info = itp_message_info((uint16_t)rd(b + at + ITP_OFF_MSG_ID, 2));
    if (version != ITP_PROTOCOL_MAJOR) return ITP_EV_UNSUPPORTED_VERSION;
    if (flags & ~ITP_KNOWN_FLAGS) return ITP_EV_UNKNOWN_FLAGS;
    if (!info) return ITP_EV_UNKNOWN_MESSAGE;
    if (length < info->min_payload || length > info->max_payload) return ITP_EV_BAD_LENGTH;
    size_t overhead = ITP_HEADER_SIZE + ITP_CRC_SIZE +
                      (flags & ITP_FLAG_AUTH ? ITP_AUTH_HEADER_SIZE + ITP_TAG_SIZE : 0);
    *end = at + length + overhead;
    return 0;
}

static int crc_ok(const uint8_t *b, size_t at, size_t end) {
    uint16_t msg_id = (uint16_t)rd(b + at + ITP_OFF_MSG_ID, 2);
    return itp_frame_crc(msg_id, b + at, end - at - 2) == rd(b + end - 2, 2);
}

/* Where to resume when a complete, CRC-valid frame starts inside the pending candidate. */
static size_t frame_inside(const uint8_t *b, size_t start, size_t n) {
    size_t undecided = (size_t)-1, j = start + 1, end;
    for (;;) {
        j = find_magic(b, j, n);
        if (j == (size_t)-1 || n - j < ITP_HEADER_SIZE) return (size_t)-1;
        if (header_check(b, j, &end) == 0) {
            if (end > n) {
                if (undecided == (size_t)-1) undecided = j;
            } else if (crc_ok(b, j, end)) {
                return undecided != (size_t)-1 ? undecided : j;
            }
        }
        j++;
    }
}

void itp_stream_init(struct itp_stream *s) { s->n = 0; }

void itp_stream_feed(struct itp_stream *s, const uint8_t *data, size_t len, itp_stream_cb cb,
                     void *ctx) {
    uint8_t *b = s->buf;
    memcpy(b + s->n, data, len);
    size_t n = s->n + len, pos = 0, skipped = 0, end;
#define FLUSH() do { if (skipped) { cb(ctx, ITP_EV_GARBAGE, NULL, skipped); skipped = 0; } } while (0)
    for (;;) {
        size_t i = find_magic(b, pos, n);
        if (i == (size_t)-1) {
            size_t keep = n > pos && b[n - 1] == ITP_MAGIC0 ? n - 1 : n;
            skipped += keep - pos;
            pos = keep;
            break;
        }
        skipped += i - pos;
        pos = i;
        if (n - i < ITP_HEADER_SIZE) break;
        int bad = header_check(b, i, &end);
        if (bad) {
            FLUSH();
            cb(ctx, (enum itp_event)bad, NULL, 0);
            pos = i + 1;
            continue;
        }
        if (end > n) {
            size_t hidden = frame_inside(b, i, n);
            if (hidden == (size_t)-1) break;
            FLUSH();
            cb(ctx, ITP_EV_TRUNCATED, NULL, 0);
            pos = hidden;
            continue;
        }
        if (!crc_ok(b, i, end)) {
            FLUSH();
            cb(ctx, ITP_EV_BAD_CRC, NULL, 0);
            pos = i + 1;
            continue;
        }
        FLUSH();
        cb(ctx, ITP_EV_FRAME, b + i, end - i);
        pos = end;
    }
    FLUSH();
#undef FLUSH
    memmove(b, b + pos, n - pos);
    s->n = n - pos;
}
