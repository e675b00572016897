"""The fixed C parts of the generated codec (tests/codegen/c_codec.py): strict UTF-8 check, JSON
helpers, frame parse / encode / CRC. They name no message and no field: every protocol-specific
value they use is a macro or table that `c_codec` writes from protocol/schema.json.
"""

from __future__ import annotations

UTF8_AND_PRINT = r"""
/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as Python's decoder. */
static int itp_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k; uint32_t cp, lo;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; lo = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; lo = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; lo = 0x10000; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < lo || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

static void itp_print_hex(FILE *out, const uint8_t *p, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) fprintf(out, "%02x", p[i]);
    fputc('"', out);
}

static void itp_print_text(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { fputc('\\', out); fputc(c, out); }
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}
"""

FRAMING = r"""
uint16_t itp_frame_crc(uint16_t msg_id, const uint8_t *frame, size_t n) {
    const struct itp_message_info *info = itp_message_info(msg_id);
    uint8_t seed[2] = {(uint8_t)(info->seed & 0xFF), (uint8_t)(info->seed >> 8)};
    uint16_t reg = itp_crc16(ITP_CRC_INIT, seed, 2);
    return (uint16_t)(itp_crc16(reg, frame, n) ^ ITP_CRC_XOROUT);
}

int itp_frame_parse(const uint8_t *b, size_t n, itp_frame_t *f) {
    memset(f, 0, sizeof *f);
    if (n < ITP_HEADER_SIZE + ITP_CRC_SIZE) return ITP_E_SHORT;
    if (b[0] != ITP_MAGIC0 || b[1] != ITP_MAGIC1) return ITP_E_MAGIC;
    f->version = b[ITP_OFF_VERSION];
    f->flags = b[ITP_OFF_FLAGS];
    f->length = (uint16_t)itp_rd(b + ITP_OFF_LENGTH, 2);
    f->seq = (uint16_t)itp_rd(b + ITP_OFF_SEQ, 2);
    f->msg_id = (uint16_t)itp_rd(b + ITP_OFF_MSG_ID, 2);
    f->pump_id = (uint32_t)itp_rd(b + ITP_OFF_PUMP_ID, 4);
    if (f->version != ITP_PROTOCOL_MAJOR) return ITP_E_VERSION;
    if (f->flags & ~ITP_KNOWN_FLAGS) return ITP_E_FLAGS;
    const struct itp_message_info *info = itp_message_info(f->msg_id);
    if (!info) return ITP_E_UNKNOWN_MESSAGE;
    if (f->length < info->min_payload || f->length > info->max_payload) return ITP_E_LENGTH;
    int auth = f->flags & ITP_FLAG_AUTH;
    size_t at = ITP_HEADER_SIZE + (auth ? ITP_AUTH_HEADER_SIZE : 0);
    size_t size = at + f->length + (auth ? ITP_TAG_SIZE : 0) + ITP_CRC_SIZE;
    if (n != size) return ITP_E_SIZE;
    if (itp_frame_crc(f->msg_id, b, n - 2) != (uint16_t)itp_rd(b + n - 2, 2)) return ITP_E_CRC;
    if (auth) {
        f->session_id = (uint32_t)itp_rd(b + ITP_OFF_SESSION_ID, 4);
        f->counter = (uint32_t)itp_rd(b + ITP_OFF_COUNTER, 4);
        f->tag = b + at + f->length;
    }
    f->payload = b + at;
    f->size = n;
    return ITP_OK;
}

size_t itp_encode_frame(const itp_message_t *m, uint8_t flags, uint16_t seq, uint32_t pump_id,
                        uint32_t session_id, uint32_t counter, uint8_t *out, size_t cap,
                        int *err) {
    const struct itp_message_info *info = itp_message_info(m->msg_id);
    if (!info) { *err = ITP_E_UNKNOWN_MESSAGE; return 0; }
    if (flags & ~ITP_KNOWN_FLAGS) { *err = ITP_E_FLAGS; return 0; }
    if (cap < ITP_MAX_FRAME) { *err = ITP_E_SPACE; return 0; }
    *err = itp_check_message(m);
    if (*err) return 0;
    int auth = flags & ITP_FLAG_AUTH;
    size_t at = ITP_HEADER_SIZE + (auth ? ITP_AUTH_HEADER_SIZE : 0);
    size_t len = itp_write_payload(m, out + at);
    out[0] = ITP_MAGIC0; out[1] = ITP_MAGIC1;
    out[ITP_OFF_VERSION] = ITP_PROTOCOL_MAJOR;
    out[ITP_OFF_FLAGS] = flags;
    itp_wr(out + ITP_OFF_LENGTH, len, 2);
    itp_wr(out + ITP_OFF_SEQ, seq, 2);
    itp_wr(out + ITP_OFF_MSG_ID, m->msg_id, 2);
    itp_wr(out + ITP_OFF_PUMP_ID, pump_id, 4);
    if (auth) {
        itp_wr(out + ITP_OFF_SESSION_ID, session_id, 4);
        itp_wr(out + ITP_OFF_COUNTER, counter, 4);
        memset(out + at + len, 0, ITP_TAG_SIZE);
    }
    size_t n = at + len + (auth ? ITP_TAG_SIZE : 0) + ITP_CRC_SIZE;
    itp_frame_finish(out, n);
    return n;
}

/* The receiver's rules that need no key: the direction flag matches the message's direction,
   and a message valid only in a session is not carried by a plain frame. */
int itp_frame_policy(const itp_frame_t *f) {
    const struct itp_message_info *info = itp_message_info(f->msg_id);
    if (!(f->flags & ITP_FLAG_FROM_PUMP) != !info->from_pump) return ITP_E_DIRECTION;
    if (info->sealed_only && !(f->flags & ITP_FLAG_AUTH)) return ITP_E_NOT_SEALED;
    return ITP_OK;
}

void itp_frame_finish(uint8_t *frame, size_t n) {
    uint16_t msg_id = (uint16_t)itp_rd(frame + ITP_OFF_MSG_ID, 2);
    itp_wr(frame + n - 2, itp_frame_crc(msg_id, frame, n - 2), 2);
}
"""
