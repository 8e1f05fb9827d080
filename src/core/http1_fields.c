/* Field-line grammar for the head and the trailers (RFC 9112 §2.2, §5;
 * RFC 9110 §5.1, §5.5). llhttp 8.1 as built without strict mode takes a
 * bare CR or LF for a line end and joins obs-fold lines into the value; a
 * peer that reads them differently frames requests differently. This scan
 * runs ahead of llhttp over the same bytes and finds the first byte that
 * breaks the grammar. */
#include "http1_impl.h"

enum { FS_START, FS_NAME, FS_VALUE, FS_CR, FS_END_CR };

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB. */
static int is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* One byte of a field line. Returns 0, or the problem in *why. */
static int field_byte(mpm__h1_msg_t *m, unsigned char c, const char **why)
{
    switch (m->fs_state) {
    case FS_START:
        if (c == '\r')
            m->fs_state = FS_END_CR;
        else if (c == ':')
            *why = "empty field name";
        else if (is_ows(c))
            *why = "obs-fold or whitespace at the start of a field line";
        else if (!mpm__h1_is_tchar(c))
            *why = "invalid character in field name";
        else
            m->fs_state = FS_NAME;
        break;
    case FS_NAME:
        if (c == ':')
            m->fs_state = FS_VALUE;
        else if (is_ows(c))
            *why = "whitespace before the colon";
        else if (!mpm__h1_is_tchar(c))
            *why = "invalid character in field name";
        break;
    case FS_VALUE:
        if (c == '\r')
            m->fs_state = FS_CR;
        else if (!is_value_byte(c))
            *why = c == '\n' ? "bare LF in field line" : "control character in field value";
        break;
    case FS_CR:
        if (c != '\n')
            *why = "bare CR in field line";
        m->fs_state = FS_START;
        break;
    default: /* FS_END_CR */
        if (c != '\n')
            *why = "bare CR at the end of the field section";
        m->fs_done = 1;
        break;
    }
    return *why != NULL;
}

/* Trailers never reach llhttp: the limits are checked here. */
static int trailer_limits(mpm__h1_t *h, unsigned char c, const char **why)
{
    mpm__h1_msg_t *m = &h->msg;
    if (m->fs_state == FS_START && c != '\r') {
        m->fs_line = 0;
        if (++m->fs_fields > h->limits.fields)
            *why = "too many trailer fields";
    }
    if (m->fs_state != FS_CR && m->fs_state != FS_END_CR && c != '\r' &&
        ++m->fs_line > h->limits.field_size)
        *why = "trailer field too long";
    return *why != NULL;
}

size_t mpm__h1_fields_scan(mpm__h1_t *h, const char *data, size_t len, int trailers, int *status,
                           const char **why)
{
    mpm__h1_msg_t *m = &h->msg;
    size_t i = 0;
    *why = NULL;
    for (; i < len && !m->fs_done; i++) {
        unsigned char c = (unsigned char)data[i];
        if (trailers && trailer_limits(h, c, why)) {
            *status = 431;
            return i;
        }
        if (field_byte(m, c, why)) {
            *status = 400;
            return i;
        }
    }
    return i;
}
