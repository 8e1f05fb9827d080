/* Chunked request bodies, framed by the engine itself (RFC 9112 §7.1).
 *
 * llhttp 8.1 reads chunk extensions with no limit and no callback (a
 * trickled extension held a connection forever), refuses some extensions
 * RFC 9112 §7.1.1 allows, does not check the CRLF after a chunk's data, and
 * takes a bare LF for a line end. So once the head says "chunked", llhttp
 * sees no more of the message: this state machine reads the chunk-size
 * lines (extensions parsed and ignored, the line capped), the data, the
 * CRLFs and the trailer section, and every deviation is a 400. */
#include "http1_impl.h"

enum {
    CK_SIZE,       /* the first hex digit of a chunk-size */
    CK_SIZE_MORE,  /* more hex digits, or what follows them */
    CK_AFTER,      /* after the size or an extension: ';', CR, or BWS */
    CK_BWS,        /* BWS that must lead to ';' */
    CK_NAME_START, /* after ';': BWS, then an extension name */
    CK_NAME,       /* in an extension name */
    CK_AFTER_NAME, /* BWS after a name: '=' or ';' must follow */
    CK_VAL_START,  /* after '=': BWS, then a token or a quoted string */
    CK_TOKEN_VAL,  /* in a token value */
    CK_QUOTED,     /* in a quoted string */
    CK_QPAIR,      /* after a backslash in a quoted string */
    CK_LF,         /* the LF ending the chunk-size line */
    CK_DATA,       /* chunk data */
    CK_DATA_CR,    /* the CRLF after the data */
    CK_DATA_LF,
    CK_TRAILERS, /* the trailer section and its empty line */
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned hex_value(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* qdtext / quoted-pair bytes (RFC 9110 §5.6.4), the quote and backslash
 * handled by the caller. */
static int is_qdtext(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int size_digit(mpm__h1_msg_t *m, unsigned char c)
{
    if (m->chunk_left >> 59) /* 16 more would pass 2^63 */
        return -1;
    m->chunk_left = m->chunk_left * 16 + hex_value(c);
    return 0;
}

/* What ends a size, a name or a value without whitespace. */
static const char *ext_delim(mpm__h1_msg_t *m, unsigned char c)
{
    if (c == ';')
        m->ck_state = CK_NAME_START;
    else if (c == '\r')
        m->ck_state = CK_LF;
    else if (is_ws(c))
        m->ck_state = CK_BWS;
    else
        return "invalid chunk extension";
    return NULL;
}

/* One byte of a chunk-size line; returns the problem or NULL. */
static const char *size_line_byte(mpm__h1_msg_t *m, unsigned char c)
{
    switch (m->ck_state) {
    case CK_SIZE:
        if (!mpm__h1_is_hex(c))
            return "chunk size is not a hex number";
        m->ck_state = CK_SIZE_MORE;
        return size_digit(m, c) ? "chunk size too large" : NULL;
    case CK_SIZE_MORE:
        if (mpm__h1_is_hex(c))
            return size_digit(m, c) ? "chunk size too large" : NULL;
        return ext_delim(m, c);
    case CK_AFTER:
        return ext_delim(m, c);
    case CK_BWS:
        if (c == ';')
            m->ck_state = CK_NAME_START;
        return c == ';' || is_ws(c) ? NULL : "invalid chunk extension";
    case CK_NAME_START:
        if (mpm__h1_is_tchar(c))
            m->ck_state = CK_NAME;
        return mpm__h1_is_tchar(c) || is_ws(c) ? NULL : "invalid chunk extension name";
    case CK_NAME:
        if (mpm__h1_is_tchar(c))
            return NULL;
        if (c == '=') {
            m->ck_state = CK_VAL_START;
            return NULL;
        }
        if (is_ws(c)) {
            m->ck_state = CK_AFTER_NAME;
            return NULL;
        }
        return ext_delim(m, c);
    case CK_AFTER_NAME:
        if (c == '=')
            m->ck_state = CK_VAL_START;
        else if (c == ';')
            m->ck_state = CK_NAME_START;
        return c == '=' || c == ';' || is_ws(c) ? NULL : "invalid chunk extension";
    case CK_VAL_START:
        if (c == '"')
            m->ck_state = CK_QUOTED;
        else if (mpm__h1_is_tchar(c))
            m->ck_state = CK_TOKEN_VAL;
        return c == '"' || mpm__h1_is_tchar(c) || is_ws(c) ? NULL : "invalid chunk extension value";
    case CK_TOKEN_VAL:
        return mpm__h1_is_tchar(c) ? NULL : ext_delim(m, c);
    case CK_QUOTED:
        if (c == '"')
            m->ck_state = CK_AFTER;
        else if (c == '\\')
            m->ck_state = CK_QPAIR;
        return c == '"' || c == '\\' || is_qdtext(c) ? NULL : "invalid quoted chunk extension";
    default: /* CK_QPAIR */
        m->ck_state = CK_QUOTED;
        return is_qdtext(c) ? NULL : "invalid quoted-pair in chunk extension";
    }
}

/* The chunk-size line ended: a data chunk, or the last chunk. */
static int size_line_done(mpm__h1_t *h)
{
    mpm__h1_msg_t *m = &h->msg;
    uint64_t size = m->chunk_left;
    if (size == 0) {
        m->ck_state = CK_TRAILERS;
        m->fs_state = 0;
        m->fs_done = 0;
        m->fs_fields = 0;
        return 0;
    }
    if (h->limits.body && size > h->limits.body - m->chunk_total)
        return mpm__h1_fail(h, 413, "request body too large");
    m->chunk_total += size;
    m->ck_state = CK_DATA;
    return 0;
}

/* Bytes of the line up to its LF. Returns the bytes consumed. */
static size_t size_line(mpm__h1_t *h, const char *data, size_t len)
{
    mpm__h1_msg_t *m = &h->msg;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (m->ck_state == CK_LF) {
            if (c != '\n')
                return mpm__h1_fail(h, 400, "bare CR in chunk-size line"), i;
            size_line_done(h);
            return i + 1;
        }
        const char *why = size_line_byte(m, c);
        if (!why && c != '\r' && ++m->ck_line > MPM__H1_CHUNK_LINE_MAX)
            why = "chunk-size line too long";
        if (why)
            return mpm__h1_fail(h, 400, why), i;
    }
    return len;
}

static size_t data_crlf(mpm__h1_t *h, char c)
{
    mpm__h1_msg_t *m = &h->msg;
    if (c != (m->ck_state == CK_DATA_CR ? '\r' : '\n'))
        return mpm__h1_fail(h, 400, "chunk data not followed by CRLF"), 0;
    if (m->ck_state == CK_DATA_CR) {
        m->ck_state = CK_DATA_LF;
    } else {
        m->ck_state = CK_SIZE;
        m->ck_line = 0;
    }
    return 1;
}

static size_t trailers(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    int status = 400;
    const char *why;
    size_t n = mpm__h1_fields_scan(h, data, len, 1, &status, &why);
    if (why)
        mpm__h1_fail(h, status, why);
    else if (h->msg.fs_done)
        ev->type = MPM__H1_END;
    return n;
}

size_t mpm__h1_chunk_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev)
{
    mpm__h1_msg_t *m = &h->msg;
    size_t i = 0;
    while (i < len && !h->error_status) {
        if (m->ck_state == CK_DATA) {
            size_t n = m->chunk_left < len - i ? (size_t)m->chunk_left : len - i;
            m->chunk_left -= n;
            m->body_seen += n;
            if (!m->chunk_left)
                m->ck_state = CK_DATA_CR;
            ev->type = MPM__H1_BODY;
            ev->data = data + i;
            ev->len = n;
            return i + n;
        }
        if (m->ck_state == CK_DATA_CR || m->ck_state == CK_DATA_LF)
            i += data_crlf(h, data[i]);
        else if (m->ck_state == CK_TRAILERS)
            return i + trailers(h, data + i, len - i, ev);
        else
            i += size_line(h, data + i, len - i);
    }
    return i;
}
