"""Generate a minimal C client codec from protocol/schema.json, and nothing else.

    python -m tests.codegen.c_codec protocol/schema.json OUT_DIR   # writes itp_codec.{h,c}

This is the proof that schema.json is complete (issue 16, item 7): the generator reads only the
JSON file (no import of `protocol`), and tests/test_schema_codegen.py compiles what it writes
with `gcc -Wall -Werror` and runs it against every golden vector in tests/vectors/.

What the generated C covers:

* framing: magic, version, known flags, message id, payload length within the message's limits,
  total size, CRC-16 (algorithm parameters and per-message seed from the schema), and the
  receiver's rules that need no key (direction flag, session-only messages never plain);
* every message and array-item record as a C struct, with a decoder (sizes, ranges, enum
  members, flag masks, strict UTF-8 for text, array counts) and an encoder that runs the same
  checks first, so a value the schema forbids is never put on the wire;
* a JSON printer per message (the form tests/vectors/messages.json uses) and enum-name lookups;
* the session constants (tag prefixes, HKDF info prefix, transcript layout) so a caller with an
  HMAC-SHA256 (tests/codegen/itp_crypto.c) can run the handshake and seal or verify frames;
* the cross-field `rules` (schema.json `rule_kinds`: nonzero, single_bit, increasing).

The fixed C text (frame parse and encode, UTF-8 check) is in `_c_runtime.py`; the hunting stream
decoder (itp_stream.c), the crypto and the test driver (driver.c) are hand-written C beside
this file that use only the generated API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ._c_runtime import FRAMING, UTF8_AND_PRINT

_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
}  # fmt: skip

_CTYPE = {
    "u8": "uint8_t",
    "u16": "uint16_t",
    "u32": "uint32_t",
    "u64": "uint64_t",
    "i8": "int8_t",
    "i16": "int16_t",
    "i32": "int32_t",
    "i64": "int64_t",
}


def _ident(name: str) -> str:
    return name + "_" if name in _C_KEYWORDS else name


def _lit(value: int, base: str) -> str:
    """A C literal of the right width and signedness (INT64_MIN has no literal of its own)."""
    if base.startswith("i"):
        if value == -(1 << 63):
            return "INT64_MIN"
        return f"INT64_C({value})"
    return f"UINT64_C({value})"


class _Gen:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.s = schema
        self.types = schema["wire_types"]
        self.records = {r["name"]: r for r in schema["records"]}
        self.enums = {e["name"]: e for e in schema["enums"]}
        self.h: list[str] = []
        self.c: list[str] = []

    # --- per field --------------------------------------------------------------------------

    def _decl(self, f: dict[str, Any]) -> list[str]:
        n = _ident(f["name"])
        k = f["kind"]
        if k in ("int", "enum", "flags"):
            return [f"    {_CTYPE[f['base']]} {n}; /* {f['type']} {f['unit'] or ''} */"]
        if k == "bool":
            return [f"    uint8_t {n}; /* bool */"]
        if k == "bytes":
            return [f"    uint8_t {n}[{f['length']}];"]
        if k == "text":
            return [f"    uint8_t {n}_len;", f"    char {n}[{f['max_bytes'] + 1}];"]
        assert k == "array"
        return [
            f"    uint8_t {n}_count;",
            f"    struct itp_rec_{f['item'].lower()} {n}[{f['max_count'] or 1}];",
        ]

    def _check(self, f: dict[str, Any], v: str) -> list[str]:
        """C statements that return ITP_E_MALFORMED when the value is outside the schema."""
        k = f["kind"]
        out: list[str] = []
        if k in ("int", "bool"):
            t = self.types[f["base"]]
            if f["min"] > t["min"]:
                out.append(f"    if ({v} < {_lit(f['min'], f['base'])}) return ITP_E_MALFORMED;")
            if f["max"] < t["max"]:
                out.append(f"    if ({v} > {_lit(f['max'], f['base'])}) return ITP_E_MALFORMED;")
        elif k == "enum":
            out.append(f"    switch ({v}) {{")
            out.append("    " + " ".join(f"case {x}:" for x in f["values"]) + " break;")
            out.append("    default: return ITP_E_MALFORMED;\n    }")
        elif k == "flags":
            out.append(f"    if ({v} & ~UINT64_C({f['mask']})) return ITP_E_MALFORMED;")
        elif k == "text":
            out.append(f"    if ({v}_len > {f['max_bytes']}) return ITP_E_MALFORMED;")
            out.append(
                f"    if (!itp_utf8_valid((const uint8_t *){v}, {v}_len)) return ITP_E_MALFORMED;"
            )
        elif k == "array":
            item = "rec_" + f["item"].lower()
            if f["min_count"]:
                out.append(f"    if ({v}_count < {f['min_count']}) return ITP_E_MALFORMED;")
            out.append(f"    if ({v}_count > {f['max_count']}) return ITP_E_MALFORMED;")
            out.append(f"    for (unsigned i = 0; i < {v}_count; i++) {{")
            out.append(f"        int r = itp_check_{item}(&{v}[i]); if (r) return r;\n    }}")
        return out

    @staticmethod
    def _rule(rule: dict[str, Any]) -> list[str]:
        """C statements for a cross-field rule (schema.json `rule_kinds`)."""
        v = f"m->{_ident(rule['field'])}"
        if rule["kind"] == "nonzero":
            return [f"    if ({v} == 0) return ITP_E_MALFORMED;"]
        if rule["kind"] == "single_bit":
            return [f"    if ({v} == 0 || ({v} & ({v} - 1))) return ITP_E_MALFORMED;"]
        assert rule["kind"] == "increasing", rule
        key = _ident(rule["key"])
        out = [
            f"    for (unsigned i = 1; i < {v}_count; i++)",
            f"        if ({v}[i].{key} <= {v}[i - 1].{key}) return ITP_E_MALFORMED;",
        ]
        if "first" in rule:
            first = rule["first"]
            out.append(f"    if ({v}_count && {v}[0].{key} != {first}) return ITP_E_MALFORMED;")
        return out

    def _read(self, f: dict[str, Any], v: str) -> list[str]:
        k = f["kind"]
        if k in ("int", "enum", "flags", "bool"):
            base = "u8" if k == "bool" else f["base"]
            size = self.types[base]["size"]
            ctype = _CTYPE[base]
            return [
                f"    if (e - p < {size}) return ITP_E_MALFORMED;",
                f"    {v} = ({ctype})itp_rd(p, {size}); p += {size};",
            ]
        if k == "bytes":
            n = f["length"]
            return [
                f"    if (e - p < {n}) return ITP_E_MALFORMED;",
                f"    memcpy({v}, p, {n}); p += {n};",
            ]
        if k == "text":
            return [
                "    if (e - p < 1) return ITP_E_MALFORMED;",
                f"    {v}_len = *p++;",
                f"    if ({v}_len > {f['max_bytes']} || e - p < {v}_len) return ITP_E_MALFORMED;",
                f"    memcpy({v}, p, {v}_len); {v}[{v}_len] = 0; p += {v}_len;",
            ]
        item = "rec_" + f["item"].lower()
        return [
            "    if (e - p < 1) return ITP_E_MALFORMED;",
            f"    {v}_count = *p++;",
            f"    if ({v}_count > {f['max_count']}) return ITP_E_MALFORMED;",
            f"    if (e - p < (ptrdiff_t){v}_count * {f['item_size']}) return ITP_E_MALFORMED;",
            f"    for (unsigned i = 0; i < {v}_count; i++) {{",
            f"        itp_read_{item}(p, &{v}[i]); p += {f['item_size']};\n    }}",
        ]

    def _write(self, f: dict[str, Any], v: str) -> list[str]:
        k = f["kind"]
        if k in ("int", "enum", "flags", "bool"):
            base = "u8" if k == "bool" else f["base"]
            size = self.types[base]["size"]
            return [f"    itp_wr(p, (uint64_t){v}, {size}); p += {size};"]
        if k == "bytes":
            return [f"    memcpy(p, {v}, {f['length']}); p += {f['length']};"]
        if k == "text":
            return [f"    *p++ = {v}_len; memcpy(p, {v}, {v}_len); p += {v}_len;"]
        item = "rec_" + f["item"].lower()
        return [
            f"    *p++ = {v}_count;",
            f"    for (unsigned i = 0; i < {v}_count; i++) {{",
            f"        itp_write_{item}(&{v}[i], p); p += {f['item_size']};\n    }}",
        ]

    def _print(self, f: dict[str, Any], v: str, first: bool) -> list[str]:
        sep = "" if first else ","
        key = f'    fputs("{sep}\\"{f["name"]}\\":", out);'
        k = f["kind"]
        if k == "bool":
            return [key, f'    fputs({v} ? "true" : "false", out);']
        if k in ("int", "enum", "flags"):
            if f["base"].startswith("i"):
                return [key, f'    fprintf(out, "%lld", (long long){v});']
            return [key, f'    fprintf(out, "%llu", (unsigned long long){v});']
        if k == "bytes":
            return [key, f"    itp_print_hex(out, {v}, {f['length']});"]
        if k == "text":
            return [key, f"    itp_print_text(out, {v}, {v}_len);"]
        item = "rec_" + f["item"].lower()
        return [
            key,
            "    fputc('[', out);",
            f"    for (unsigned i = 0; i < {v}_count; i++) {{",
            "        if (i) fputc(',', out);",
            f"        itp_print_{item}(out, &{v}[i]);\n    }}",
            "    fputc(']', out);",
        ]

    # --- per record / message ---------------------------------------------------------------

    def _struct(self, cname: str, spec: dict[str, Any]) -> None:
        self.h.append(f"/* {spec['signature']} */")
        self.h.append(f"struct itp_{cname} {{")
        for f in spec["fields"]:
            self.h.extend(self._decl(f))
        if not spec["fields"]:
            self.h.append("    uint8_t unused_; /* empty payload */")
        self.h.append("};\n")

    def _functions(self, cname: str, spec: dict[str, Any], *, record: bool) -> None:
        fields = spec["fields"]
        t = f"struct itp_{cname}"
        body = [line for f in fields for line in self._check(f, f"m->{_ident(f['name'])}")]
        body += [line for r in spec["rules"] for line in self._rule(r)]
        self.c.append(f"static int itp_check_{cname}(const {t} *m) {{")
        self.c.extend(body or ["    (void)m;"])
        self.c.append("    return ITP_OK;\n}\n")
        if record:  # fixed size, bounds checked by the caller
            self.c.append(f"static void itp_read_{cname}(const uint8_t *p, {t} *m) {{")
            self.c.append(f"    const uint8_t *e = p + {spec['size']};")
            lines = [x for f in fields for x in self._read(f, f"m->{_ident(f['name'])}")]
            self.c.extend(x for x in lines if "return ITP_E_MALFORMED" not in x)
            self.c.append("    (void)e;\n}\n")
        else:
            self.c.append(f"static int itp_read_{cname}(const uint8_t *p, size_t n, {t} *m) {{")
            self.c.append("    const uint8_t *e = p + n;")
            for f in fields:
                self.c.extend(self._read(f, f"m->{_ident(f['name'])}"))
            self.c.append("    if (p != e) return ITP_E_MALFORMED;")
            self.c.append(f"    return itp_check_{cname}(m);\n}}\n")
        ret = "void" if record else "size_t"
        self.c.append(f"static {ret} itp_write_{cname}(const {t} *m, uint8_t *p) {{")
        if not record:
            self.c.append("    uint8_t *start = p;")
        for f in fields:
            self.c.extend(self._write(f, f"m->{_ident(f['name'])}"))
        if not fields:
            self.c.append("    (void)m;")
        self.c.append("    (void)p;" if record else "    return (size_t)(p - start);")
        self.c.append("}\n")
        self.c.append(f"static void itp_print_{cname}(FILE *out, const {t} *m) {{")
        self.c.append("    fputc('{', out);")
        for i, f in enumerate(fields):
            self.c.extend(self._print(f, f"m->{_ident(f['name'])}", i == 0))
        if not fields:
            self.c.append("    (void)m;")
        self.c.append("    fputc('}', out);\n}\n")

    def _enum_lookups(self) -> None:
        for name, e in sorted(self.enums.items()):
            self.h.append(f"/* {name} ({e['kind']}): {e['doc']} */")
            for v in e["values"]:
                comment = f" /* {v['doc']} */" if v["doc"] else ""
                self.h.append(f"#define ITP_{_upper(name)}_{v['name']} {v['value']}{comment}")
            self.h.append(f"const char *itp_{_upper(name).lower()}_name(uint64_t value);\n")
            self.c.append(f"const char *itp_{_upper(name).lower()}_name(uint64_t value) {{")
            self.c.append("    switch (value) {")
            for v in e["values"]:
                self.c.append(f'    case {v["value"]}: return "{v["name"]}";')
            self.c.append("    default: return NULL;\n    }\n}\n")

    def _message_table(self) -> None:
        msgs = self.s["messages"]
        sealing = {"optional": 0, "always": 1}
        self.c.append("const struct itp_message_info itp_messages[ITP_MESSAGE_COUNT] = {")
        for m in msgs:
            self.c.append(
                f'    {{{m["id"]}, "{m["name"]}", {m["seed"]}, {m["min_payload"]}, '
                f"{m['max_payload']}, {int(m['direction'] == 'pump_to_host')}, "
                f"{sealing[m['sealing']]}}},"
            )
        self.c.append("};\n")
        self.c.append("const struct itp_message_info *itp_message_info(uint16_t msg_id) {")
        self.c.append("    for (size_t i = 0; i < ITP_MESSAGE_COUNT; i++)")
        self.c.append("        if (itp_messages[i].id == msg_id) return &itp_messages[i];")
        self.c.append("    return NULL;\n}\n")
        self.c.append(
            "int itp_decode_payload(uint16_t msg_id, const uint8_t *p, size_t n, "
            "itp_message_t *m) {"
        )
        self.c.append("    memset(m, 0, sizeof *m);\n    m->msg_id = msg_id;")
        self.c.append("    switch (msg_id) {")
        for m in msgs:
            c = m["name"].lower()
            self.c.append(f"    case {m['id']}: return itp_read_msg_{c}(p, n, &m->u.{c});")
        self.c.append("    default: return ITP_E_UNKNOWN_MESSAGE;\n    }\n}\n")
        self.c.append("int itp_check_message(const itp_message_t *m) {\n    switch (m->msg_id) {")
        for m in msgs:
            c = m["name"].lower()
            self.c.append(f"    case {m['id']}: return itp_check_msg_{c}(&m->u.{c});")
        self.c.append("    default: return ITP_E_UNKNOWN_MESSAGE;\n    }\n}\n")
        self.c.append("size_t itp_write_payload(const itp_message_t *m, uint8_t *p) {")
        self.c.append("    switch (m->msg_id) {")
        for m in msgs:
            c = m["name"].lower()
            self.c.append(f"    case {m['id']}: return itp_write_msg_{c}(&m->u.{c}, p);")
        self.c.append("    default: return 0;\n    }\n}\n")
        self.c.append("void itp_print_fields(FILE *out, const itp_message_t *m) {")
        self.c.append("    switch (m->msg_id) {")
        for m in msgs:
            c = m["name"].lower()
            self.c.append(f"    case {m['id']}: itp_print_msg_{c}(out, &m->u.{c}); break;")
        self.c.append('    default: fputs("null", out);\n    }\n}\n')

    def _enum_labels(self) -> None:
        """`itp_print_labels`: the enum name of each top-level enum field, as a JSON object."""
        self.c.append("void itp_print_labels(FILE *out, const itp_message_t *m) {")
        self.c.append("    const char *s;\n    fputc('{', out);\n    switch (m->msg_id) {")
        for m in self.s["messages"]:
            enums = [f for f in m["fields"] if f["kind"] == "enum"]
            if not enums:
                continue
            c = m["name"].lower()
            self.c.append(f"    case {m['id']}:")
            for i, f in enumerate(enums):
                fn = f"itp_{_upper(f['enum']).lower()}_name"
                sep = "" if i == 0 else ","
                self.c.append(
                    f"        s = {fn}(m->u.{c}.{_ident(f['name'])});"
                    f' fprintf(out, "{sep}\\"{f["name"]}\\":\\"%s\\"", s ? s : "?");'
                )
            self.c.append("        break;")
        self.c.append("    default: break;\n    }\n    (void)s;\n    fputc('}', out);\n}\n")

    # --- the two files ----------------------------------------------------------------------

    def header(self) -> str:
        s, fr, se = self.s, self.s["frame"], self.s["session"]
        crc = fr["crc"]
        assert fr["magic"] == "e71a" or len(fr["magic"]) == 4
        magic = bytes.fromhex(fr["magic"])
        flags = {f["name"]: f["mask"] for f in fr["flags"]}
        hdr = {f["name"]: f["offset"] for f in fr["header"] + fr["auth_header"]}
        transcript = se["transcript"]
        self.h = [
            f"/* Generated from protocol/schema.json (protocol {s['protocol']['version']}) by",
            "   tests/codegen/c_codec.py. Do not edit. */",
            "#ifndef ITP_CODEC_H\n#define ITP_CODEC_H\n",
            "#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n",
            f"#define ITP_PROTOCOL_MAJOR {s['protocol']['major']}",
            f"#define ITP_PROTOCOL_MINOR {s['protocol']['minor']}",
            f"#define ITP_MAGIC0 0x{magic[0]:02X}\n#define ITP_MAGIC1 0x{magic[1]:02X}",
            *(f"#define ITP_FLAG_{k} 0x{v:02X}" for k, v in flags.items()),
            f"#define ITP_KNOWN_FLAGS 0x{fr['known_flags_mask']:02X}",
            f"#define ITP_HEADER_SIZE {fr['header_size']}",
            f"#define ITP_AUTH_HEADER_SIZE {fr['auth_header_size']}",
            *(f"#define ITP_OFF_{k.upper()} {v}" for k, v in hdr.items()),
            f"#define ITP_TAG_SIZE {fr['tag_size']}\n#define ITP_CRC_SIZE {fr['crc_size']}",
            f"#define ITP_MAX_PAYLOAD {fr['max_payload']}\n#define ITP_MAX_FRAME {fr['max_frame']}",
            f"#define ITP_BROADCAST_PUMP_ID UINT32_C({fr['broadcast_pump_id']})",
            f"/* {crc['algorithm']} over {crc['input']} */",
            f"#define ITP_CRC_POLY 0x{crc['poly']:04X}\n#define ITP_CRC_INIT 0x{crc['init']:04X}",
            f"#define ITP_CRC_XOROUT 0x{crc['xorout']:04X}",
            f"#define ITP_KEY_SIZE {se['key_size']}\n#define ITP_NONCE_SIZE {se['nonce_size']}",
            f"#define ITP_TRANSCRIPT_SIZE {transcript['size']}",
            f"#define ITP_TAG_PREFIX_P 0x{se['tag_prefix_P']}",
            f"#define ITP_TAG_PREFIX_H 0x{se['tag_prefix_H']}",
            f"#define ITP_KDF_LENGTH {se['kdf']['length']}",
            '#define ITP_KDF_INFO_PREFIX "'
            + "".join(f"\\x{b:02x}" for b in bytes.fromhex(se["kdf"]["info_prefix"]))
            + '"',
            f"#define ITP_KDF_INFO_PREFIX_LEN {len(bytes.fromhex(se['kdf']['info_prefix']))}",
            f"#define ITP_REPLAY_WINDOW {se['replay_window']}",
            f"#define ITP_MESSAGE_COUNT {len(s['messages'])}\n",
            "enum itp_error { ITP_OK = 0, ITP_E_SHORT, ITP_E_MAGIC, ITP_E_VERSION, ITP_E_FLAGS,",
            "    ITP_E_UNKNOWN_MESSAGE, ITP_E_LENGTH, ITP_E_SIZE, ITP_E_CRC, ITP_E_MALFORMED,",
            "    ITP_E_SPACE, ITP_E_DIRECTION, ITP_E_NOT_SEALED };",
            "const char *itp_error_name(int err);\n",
            "/* sealed_only: 1 when the message is valid only in an authenticated frame */",
            "struct itp_message_info { uint16_t id; const char *name; uint16_t seed;",
            "    uint16_t min_payload, max_payload; uint8_t from_pump, sealed_only; };",
            "extern const struct itp_message_info itp_messages[ITP_MESSAGE_COUNT];",
            "const struct itp_message_info *itp_message_info(uint16_t msg_id);\n",
            "typedef struct { uint8_t version, flags; uint16_t length, seq, msg_id;",
            "    uint32_t pump_id, session_id, counter; const uint8_t *payload, *tag;",
            "    size_t size; } itp_frame_t;\n",
        ]
        for name in sorted(self.records):
            self._struct("rec_" + name.lower(), self.records[name])
        for m in s["messages"]:
            self.h.append(f"/* 0x{m['id']:04X} {m['name']}: {m['doc'].replace('*/', '')} */")
            self._struct("msg_" + m["name"].lower(), m)
        self.h.append("typedef struct { uint16_t msg_id; union {")
        for m in s["messages"]:
            c = m["name"].lower()
            self.h.append(f"    struct itp_msg_{c} {c};")
        self.h.append("} u; } itp_message_t;\n")
        self.h += [
            "uint16_t itp_crc16(uint16_t reg, const uint8_t *p, size_t n);",
            "/* CRC register of a frame (without its last two bytes), the message's seed first */",
            "uint16_t itp_frame_crc(uint16_t msg_id, const uint8_t *frame, size_t n_without_crc);",
            "/* Checks framing and CRC of exactly one frame of n bytes. */",
            "int itp_frame_parse(const uint8_t *buf, size_t n, itp_frame_t *f);",
            "int itp_decode_payload(uint16_t msg_id, const uint8_t *p, size_t n,",
            "    itp_message_t *m);",
            "int itp_check_message(const itp_message_t *m);",
            "size_t itp_write_payload(const itp_message_t *m, uint8_t *p);",
            "/* Encodes a frame; with ITP_FLAG_AUTH the tag is left zero: fill it with",
            "   itp_seal_input's HMAC, then call itp_frame_finish. Returns the size or 0. */",
            "size_t itp_encode_frame(const itp_message_t *m, uint8_t flags, uint16_t seq,",
            "    uint32_t pump_id, uint32_t session_id, uint32_t counter, uint8_t *out,",
            "    size_t cap, int *err);",
            "void itp_frame_finish(uint8_t *frame, size_t n);",
            "/* ITP_OK, ITP_E_DIRECTION or ITP_E_NOT_SEALED (session-only message, plain frame) */",
            "int itp_frame_policy(const itp_frame_t *f);",
            "void itp_print_fields(FILE *out, const itp_message_t *m);",
            "void itp_print_labels(FILE *out, const itp_message_t *m);",
            "void itp_transcript(uint8_t out[ITP_TRANSCRIPT_SIZE], uint32_t host_id, uint8_t role,",
            "    const uint8_t *nonce_h, uint32_t pump_id, uint32_t session_id,",
            "    const uint8_t *nonce_p);\n",
        ]
        self._enum_lookups()
        self.h.append("#endif")
        return "\n".join(self.h) + "\n"

    def source(self) -> str:
        self.c = []
        self.header()  # fills the enum lookups into self.c too
        lookups = self.c
        crc = self.s["frame"]["crc"]
        self.c = [
            "/* Generated from protocol/schema.json by tests/codegen/c_codec.py. Do not edit. */",
            '#include "itp_codec.h"\n#include <string.h>\n',
            "static uint64_t itp_rd(const uint8_t *p, int n) {",
            "    uint64_t v = 0;",
            "    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];",
            "    return v;\n}\n",
            "static void itp_wr(uint8_t *p, uint64_t v, int n) {",
            "    for (int i = 0; i < n; i++) { p[i] = (uint8_t)v; v >>= 8; }\n}\n",
            UTF8_AND_PRINT,
            "const char *itp_error_name(int err) {",
            '    static const char *names[] = {"ok", "short", "magic", "version", "flags",',
            '        "unknown_message", "length", "size", "crc", "malformed", "space",',
            '        "direction", "not_sealed"};',
            '    return err >= 0 && err <= ITP_E_NOT_SEALED ? names[err] : "?";\n}\n',
            "uint16_t itp_crc16(uint16_t reg, const uint8_t *p, size_t n) {",
            "    for (size_t i = 0; i < n; i++) {",
            "        reg ^= (uint16_t)(p[i] << 8);" if not crc["refin"] else "#error refin",
            "        for (int b = 0; b < 8; b++)",
            "            reg = (uint16_t)(reg & 0x8000 ? (reg << 1) ^ ITP_CRC_POLY : reg << 1);",
            "    }\n    return reg;\n}\n",
        ]
        for name in sorted(self.records):
            self._functions("rec_" + name.lower(), self.records[name], record=True)
        for m in self.s["messages"]:
            self._functions("msg_" + m["name"].lower(), m, record=False)
        self._message_table()
        self._enum_labels()
        self.c.extend(lookups)
        self.c.append(self._transcript())
        self.c.append(FRAMING)
        return "\n".join(self.c) + "\n"

    def _transcript(self) -> str:
        args = {"host_id": "host_id", "role": "role", "nonce_H": "nonce_h"}
        args |= {"pump_id": "pump_id", "session_id": "session_id", "nonce_P": "nonce_p"}
        lines = [
            "void itp_transcript(uint8_t out[ITP_TRANSCRIPT_SIZE], uint32_t host_id, uint8_t role,",
            "    const uint8_t *nonce_h, uint32_t pump_id, uint32_t session_id,",
            "    const uint8_t *nonce_p) {",
            "    uint8_t *p = out;",
        ]
        for item in self.s["session"]["transcript"]["layout"]:
            t, v = item["type"], args[item["name"]]
            if t.startswith("bytes"):
                n = int(t[5:])
                lines.append(f"    memcpy(p, {v}, {n}); p += {n};")
            else:
                n = self.types[t]["size"]
                lines.append(f"    itp_wr(p, {v}, {n}); p += {n};")
        lines.append("    (void)p;\n}\n")
        return "\n".join(lines)


def _upper(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def generate(schema: dict[str, Any]) -> dict[str, str]:
    """File name -> content of the generated codec."""
    gen = _Gen(schema)
    return {"itp_codec.h": gen.header(), "itp_codec.c": _Gen(schema).source()}


def main(argv: list[str]) -> int:
    schema = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in generate(schema).items():
        (out / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
