#include "proto/auth_protocol.h"

#include <string.h>

static int sent_by_client(unsigned type)
{
    return type == AUTH_FRAME_START || type == AUTH_FRAME_ANSWER;
}

static int sent_by_server(unsigned type)
{
    return type == AUTH_FRAME_PROMPT_ECHO_OFF || type == AUTH_FRAME_PROMPT_ECHO_ON ||
           type == AUTH_FRAME_INFO || type == AUTH_FRAME_ERROR || type == AUTH_FRAME_RESULT;
}

static int valid_text(const unsigned char *text, size_t len)
{
    return len <= AUTH_TEXT_MAX && (len == 0 || memchr(text, '\0', len) == NULL);
}

enum auth_parse_status auth_protocol_parse(const unsigned char *buf, size_t len,
                                           enum auth_sender sender, struct auth_frame *frame,
                                           size_t *consumed)
{
    if (len < 1)
        return AUTH_PARSE_NEED_MORE;
    unsigned type = buf[0];
    /* The type is judged as soon as it arrives: garbage fails before a length is read. */
    if (sender == AUTH_FROM_CLIENT ? !sent_by_client(type) : !sent_by_server(type))
        return AUTH_PARSE_BAD_TYPE;
    if (len < AUTH_FRAME_HEADER_LEN)
        return AUTH_PARSE_NEED_MORE;
    size_t payload_len = ((size_t)buf[1] << 8) | buf[2];
    if (payload_len > AUTH_FRAME_MAX_PAYLOAD)
        return AUTH_PARSE_TOO_LARGE;
    if (len < AUTH_FRAME_HEADER_LEN + payload_len)
        return AUTH_PARSE_NEED_MORE;
    const unsigned char *payload = buf + AUTH_FRAME_HEADER_LEN;
    struct auth_frame parsed = { .type = (enum auth_frame_type)type };

    switch (type) {
    case AUTH_FRAME_START:
        if (payload_len != 0)
            return AUTH_PARSE_BAD_PAYLOAD;
        break;
    case AUTH_FRAME_RESULT:
        if (payload_len < AUTH_RESULT_FIXED_LEN || payload[0] > AUTH_RESULT_LAST)
            return AUTH_PARSE_BAD_PAYLOAD;
        parsed.status = (enum auth_result)payload[0];
        for (int i = 1; i <= 8; i++)
            parsed.value = (parsed.value << 8) | payload[i];
        parsed.attempts_left = payload[9];
        parsed.text = payload + AUTH_RESULT_FIXED_LEN;
        parsed.text_len = payload_len - AUTH_RESULT_FIXED_LEN;
        if (!valid_text(parsed.text, parsed.text_len))
            return AUTH_PARSE_BAD_PAYLOAD;
        break;
    default:
        parsed.text = payload;
        parsed.text_len = payload_len;
        if (!valid_text(parsed.text, parsed.text_len))
            return AUTH_PARSE_BAD_PAYLOAD;
        break;
    }
    *frame = parsed;
    *consumed = AUTH_FRAME_HEADER_LEN + payload_len;
    return AUTH_PARSE_OK;
}

static void put_header(unsigned char *out, unsigned type, size_t payload_len)
{
    out[0] = (unsigned char)type;
    out[1] = (unsigned char)(payload_len >> 8);
    out[2] = (unsigned char)(payload_len & 0xff);
}

size_t auth_protocol_encode(enum auth_frame_type type, const void *text, size_t text_len,
                            unsigned char *out, size_t cap)
{
    if (type == AUTH_FRAME_RESULT || (!sent_by_client(type) && !sent_by_server(type)))
        return 0;
    if (type == AUTH_FRAME_START && text_len != 0)
        return 0;
    if ((text_len > 0 && text == NULL) || !valid_text(text, text_len))
        return 0;
    if (cap < AUTH_FRAME_HEADER_LEN + text_len)
        return 0;
    put_header(out, type, text_len);
    if (text_len > 0)
        memcpy(out + AUTH_FRAME_HEADER_LEN, text, text_len);
    return AUTH_FRAME_HEADER_LEN + text_len;
}

size_t auth_protocol_encode_result(enum auth_result status, uint64_t value,
                                   unsigned attempts_left, const char *text,
                                   unsigned char *out, size_t cap)
{
    size_t text_len = text != NULL ? strlen(text) : 0;
    if (text_len > AUTH_TEXT_MAX)
        text_len = AUTH_TEXT_MAX;
    size_t payload_len = AUTH_RESULT_FIXED_LEN + text_len;
    if (cap < AUTH_FRAME_HEADER_LEN + payload_len || (unsigned)status > AUTH_RESULT_LAST)
        return 0;
    put_header(out, AUTH_FRAME_RESULT, payload_len);
    unsigned char *payload = out + AUTH_FRAME_HEADER_LEN;
    payload[0] = (unsigned char)status;
    for (int i = 8; i >= 1; i--) {
        payload[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
    payload[9] = (unsigned char)(attempts_left > 255 ? 255 : attempts_left);
    /* The frame carries the text's bytes without a NUL: its length is in the header. */
    if (text_len > 0)
        memcpy(payload + AUTH_RESULT_FIXED_LEN, text, text_len); // NOLINT(bugprone-not-null-terminated-result)
    return AUTH_FRAME_HEADER_LEN + payload_len;
}

const char *auth_protocol_parse_error(enum auth_parse_status status)
{
    switch (status) {
    case AUTH_PARSE_OK:
        return "no error";
    case AUTH_PARSE_NEED_MORE:
        return "incomplete frame";
    case AUTH_PARSE_TOO_LARGE:
        return "frame too large";
    case AUTH_PARSE_BAD_TYPE:
        return "unexpected frame type";
    case AUTH_PARSE_BAD_PAYLOAD:
        return "malformed frame";
    }
    return "unknown error";
}

/* Length of the well-formed UTF-8 sequence at TEXT (LEN bytes available), or 0. C1
 * controls (U+0080..U+009F) count as malformed: terminals may act on them. */
static size_t utf8_sequence(const unsigned char *text, size_t len)
{
    unsigned char lead = text[0];
    size_t need;
    uint32_t code;
    if (lead >= 0xc2 && lead <= 0xdf) {
        need = 2;
        code = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        need = 3;
        code = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        need = 4;
        code = lead & 0x07;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((text[i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (text[i] & 0x3f);
    }
    int overlong = (need == 3 && code < 0x800) || (need == 4 && code < 0x10000);
    if (overlong || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || code <= 0x9f)
        return 0;
    return need;
}

char *auth_protocol_printable(const unsigned char *text, size_t len, int one_line, char *out,
                              size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return out;
    for (size_t i = 0; i < len && used + 1 < cap;) {
        unsigned char c = text[i];
        if (c >= 0x80) {
            size_t seq = utf8_sequence(text + i, len - i);
            if (seq > 0 && used + seq < cap) {
                memcpy(out + used, text + i, seq);
                used += seq;
                i += seq;
                continue;
            }
            out[used++] = '?';
            i++;
            continue;
        }
        int keep = c >= 0x20 && c != 0x7f;
        if (!one_line && (c == '\n' || c == '\t'))
            keep = 1;
        out[used++] = (char)(keep ? c : '?');
        i++;
    }
    out[used] = '\0';
    return out;
}
