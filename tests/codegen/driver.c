/* Test harness around the generated codec (itp_codec.c) and itp_crypto.c. Knows no message:
   everything protocol-specific comes from the generated code. Reads commands on stdin, one per
   line, and answers each with one JSON line on stdout:

     frame HEX                  framing + CRC + decode, then re-encode (plain frames)
     sealed KEY HEX             the same for an AUTH frame, verifying its tag with KEY (hex)
                                and re-encoding it with a freshly computed tag
     keys K HOST ROLE NH PUMP SID NP   handshake: transcript, tag_P, tag_H, k_h2p, k_p2h
     stream CHUNK HEX           the hunting stream decoder fed CHUNK bytes at a time: what it
                                found, in order (message names, decode error names)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itp_codec.h"
#include "itp_crypto.h"
#include "itp_stream.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap) return (size_t)-1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return (size_t)-1;
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

static void hex(const uint8_t *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    putchar('"');
}

static void fail(const char *what) { printf("{\"ok\":false,\"error\":\"%s\"}\n", what); }

/* The bytes the tag covers: version .. end of payload. */
static void seal_tag(const uint8_t *key, const uint8_t *frame, const itp_frame_t *f,
                     uint8_t tag[32]) {
    size_t end = ITP_HEADER_SIZE + ITP_AUTH_HEADER_SIZE + f->length;
    itp_hmac_sha256(key, ITP_KEY_SIZE, frame + 2, end - 2, NULL, 0, tag);
}

static void do_frame(const char *key_hex, const char *frame_hex) {
    static uint8_t buf[ITP_MAX_FRAME + 1], again[ITP_MAX_FRAME];
    uint8_t key[ITP_KEY_SIZE], tag[32];
    itp_frame_t f;
    itp_message_t m;
    int tag_ok = -1, err;
    size_t n = unhex(frame_hex, buf, sizeof buf);
    if (n == (size_t)-1) { fail("hex"); return; }
    if ((err = itp_frame_parse(buf, n, &f)) != ITP_OK) { fail(itp_error_name(err)); return; }
    if (f.flags & ITP_FLAG_AUTH) {
        if (!key_hex || unhex(key_hex, key, sizeof key) != ITP_KEY_SIZE) { fail("key"); return; }
        seal_tag(key, buf, &f, tag);
        tag_ok = itp_tag_equal(tag, f.tag, ITP_TAG_SIZE);
        if (!tag_ok) { fail("tag"); return; }
    }
    if ((err = itp_decode_payload(f.msg_id, f.payload, f.length, &m)) != ITP_OK) {
        fail(itp_error_name(err));
        return;
    }
    size_t k = itp_encode_frame(&m, f.flags, f.seq, f.pump_id, f.session_id, f.counter, again,
                                sizeof again, &err);
    if (!k) { fail(itp_error_name(err)); return; }
    if (f.flags & ITP_FLAG_AUTH) {
        itp_frame_t g;
        if (itp_frame_parse(again, k, &g) != ITP_OK) { fail("reparse"); return; }
        seal_tag(key, again, &g, tag);
        memcpy(again + k - ITP_CRC_SIZE - ITP_TAG_SIZE, tag, ITP_TAG_SIZE);
        itp_frame_finish(again, k);
    }
    printf("{\"ok\":true,\"msg_id\":%u,\"name\":\"%s\",\"flags\":%u,\"seq\":%u,\"pump_id\":%lu,"
           "\"session_id\":%lu,\"counter\":%lu,\"tag_ok\":%s,\"policy\":\"%s\",\"fields\":",
           f.msg_id, itp_message_info(f.msg_id)->name, f.flags, f.seq, (unsigned long)f.pump_id,
           (unsigned long)f.session_id, (unsigned long)f.counter,
           tag_ok < 0 ? "null" : "true", itp_error_name(itp_frame_policy(&f)));
    itp_print_fields(stdout, &m);
    fputs(",\"labels\":", stdout);
    itp_print_labels(stdout, &m);
    fputs(",\"reencoded\":", stdout);
    hex(again, k);
    puts("}");
}

static void do_keys(char **a) {
    uint8_t key[ITP_KEY_SIZE], nh[ITP_NONCE_SIZE], np[ITP_NONCE_SIZE];
    uint8_t t[1 + ITP_TRANSCRIPT_SIZE], mac[32], info[ITP_KDF_INFO_PREFIX_LEN + 5];
    uint8_t salt[2 * ITP_NONCE_SIZE], okm[ITP_KDF_LENGTH];
    if (unhex(a[0], key, sizeof key) != ITP_KEY_SIZE || unhex(a[3], nh, sizeof nh) != sizeof nh ||
        unhex(a[6], np, sizeof np) != sizeof np) {
        fail("hex");
        return;
    }
    uint32_t host = (uint32_t)strtoul(a[1], NULL, 10), pump = (uint32_t)strtoul(a[4], NULL, 10);
    uint32_t sid = (uint32_t)strtoul(a[5], NULL, 10);
    uint8_t role = (uint8_t)strtoul(a[2], NULL, 10);
    itp_transcript(t + 1, host, role, nh, pump, sid, np);
    fputs("{\"ok\":true,\"transcript\":", stdout);
    hex(t + 1, ITP_TRANSCRIPT_SIZE);
    t[0] = ITP_TAG_PREFIX_P;
    itp_hmac_sha256(key, sizeof key, t, sizeof t, NULL, 0, mac);
    fputs(",\"tag_P\":", stdout);
    hex(mac, ITP_TAG_SIZE);
    t[0] = ITP_TAG_PREFIX_H;
    itp_hmac_sha256(key, sizeof key, t, sizeof t, NULL, 0, mac);
    fputs(",\"tag_H\":", stdout);
    hex(mac, ITP_TAG_SIZE);
    memcpy(salt, nh, ITP_NONCE_SIZE);
    memcpy(salt + ITP_NONCE_SIZE, np, ITP_NONCE_SIZE);
    memcpy(info, ITP_KDF_INFO_PREFIX, ITP_KDF_INFO_PREFIX_LEN);
    for (int i = 0; i < 4; i++) info[ITP_KDF_INFO_PREFIX_LEN + i] = (uint8_t)(sid >> (8 * i));
    info[ITP_KDF_INFO_PREFIX_LEN + 4] = role;
    itp_hkdf_sha256(key, sizeof key, salt, sizeof salt, info, sizeof info, okm, sizeof okm);
    fputs(",\"k_h2p\":", stdout);
    hex(okm, 32);
    fputs(",\"k_p2h\":", stdout);
    hex(okm + 32, 32);
    puts("}");
}

static void on_event(void *ctx, enum itp_event kind, const uint8_t *frame, size_t n) {
    static const char *names[] = {"", "GarbageSkipped", "BadCrc", "BadLength", "UnknownMessage",
                                  "UnsupportedVersion", "UnknownFlags", "TruncatedFrame"};
    int *count = ctx;
    printf("%s\"", (*count)++ ? "," : "");
    if (kind == ITP_EV_FRAME)
        printf("%s", itp_message_info((uint16_t)(frame[ITP_OFF_MSG_ID] |
                                                 frame[ITP_OFF_MSG_ID + 1] << 8))->name);
    else if (kind == ITP_EV_GARBAGE)
        printf("%s:%zu", names[kind], n);
    else
        printf("%s", names[kind]);
    putchar('"');
}

static void do_stream(const char *chunk_text, const char *data_hex) {
    static uint8_t data[1 << 16];
    static struct itp_stream s;
    size_t chunk = strtoul(chunk_text, NULL, 10);
    size_t n = unhex(data_hex, data, sizeof data);
    int count = 0;
    if (n == (size_t)-1 || chunk == 0 || chunk > ITP_MAX_FRAME) { fail("arguments"); return; }
    itp_stream_init(&s);
    fputs("{\"ok\":true,\"events\":[", stdout);
    for (size_t i = 0; i < n; i += chunk)
        itp_stream_feed(&s, data + i, n - i < chunk ? n - i : chunk, on_event, &count);
    puts("]}");
}

int main(void) {
    static char line[1 << 18];
    while (fgets(line, sizeof line, stdin)) {
        char *a[8];
        int n = 0;
        for (char *tok = strtok(line, " \r\n"); tok && n < 8; tok = strtok(NULL, " \r\n"))
            a[n++] = tok;
        if (n == 2 && !strcmp(a[0], "frame")) do_frame(NULL, a[1]);
        else if (n == 3 && !strcmp(a[0], "sealed")) do_frame(a[1], a[2]);
        else if (n == 8 && !strcmp(a[0], "keys")) do_keys(a + 1);
        else if (n == 3 && !strcmp(a[0], "stream")) do_stream(a[1], a[2]);
        else fail("command");
        fflush(stdout);
    }
    return 0;
}
