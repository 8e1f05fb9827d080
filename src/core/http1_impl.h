/* Private to the request side of the HTTP/1.1 engine (http1_*.c): the
 * pieces that check what llhttp 8.1 does not, or not as RFC 9112 says. */
#ifndef MPM_CORE_HTTP1_IMPL_H
#define MPM_CORE_HTTP1_IMPL_H

#include "http1.h"

/* The size of a chunk-size line, extensions included, the engine accepts
 * (CRLF excluded); a longer one is answered 400. */
#define MPM__H1_CHUNK_LINE_MAX 4096u

/* Where a connection's engine is (h->state). */
enum { MPM__H1_ST_IDLE, MPM__H1_ST_HEAD, MPM__H1_ST_BODY, MPM__H1_ST_DONE, MPM__H1_ST_DEAD };

/* Records the answer for the first problem found (later ones are ignored).
 * Returns HPE_USER, which makes llhttp stop when returned from a callback. */
int mpm__h1_fail(mpm__h1_t *h, int status, const char *why);

/* Arena appends (NUL kept room for); 0 or the llhttp stop value after
 * recording a 431/500. */
int mpm__h1_arena_put(mpm__h1_t *h, const char *at, size_t len);
int mpm__h1_arena_end_string(mpm__h1_t *h);
/* Appends a copy of arena bytes [off, off+n) as a string; *at gets its
 * offset. */
int mpm__h1_arena_copy(mpm__h1_t *h, size_t off, size_t n, size_t *at);

/* ---- character classes (RFC 9110 §5.6.2, RFC 3986 §2) ---- */

int mpm__h1_is_tchar(unsigned char c);
/* A byte that may appear in a request-target as is: visible ASCII except
 * '#' (a fragment is never sent) and '%' (it must start a pct-encoding).
 * RFC 3986 allows fewer, but browsers send | ^ { } [ ] ` raw (WHATWG URL
 * percent-encode sets), so only what makes a target ambiguous is refused:
 * whitespace, controls, DEL, obs-text, '#', a bad escape. */
int mpm__h1_is_target_char(unsigned char c);
int mpm__h1_is_hex(unsigned char c);

/* Whether s[0..n) is `uri-host [ ":" port ]` (RFC 9112 §3.2; RFC 3986
 * §3.2.2): an IP-literal, an IPv4 address or a reg-name, and an optional
 * port of at most 65535. need_host: the host may not be empty; need_port: a
 * port must be given (CONNECT's authority-form). */
int mpm__h1_authority_ok(const char *s, size_t n, int need_host, int need_port);

/* ---- the request line (http1_line.c) ---- */

/* Scans request-line bytes (and the empty lines RFC 9112 §2.2 lets a
 * client send before it), storing method and target in the arena. Returns
 * the bytes consumed; stops after the line's LF with msg.line_state done,
 * or at the first bad byte with the error recorded. */
size_t mpm__h1_line_scan(mpm__h1_t *h, const char *data, size_t len);
/* Whether the request line is complete. */
int mpm__h1_line_done(const mpm__h1_t *h);
/* Validates the finished line (version, method, target form) and stores
 * the path and authority. Returns 0 or an error recorded with fail. */
int mpm__h1_line_finish(mpm__h1_t *h);

/* ---- field sections (head and trailers) ---- */

/* Checks field-line grammar (RFC 9112 §5, RFC 9110 §5.5): a token name
 * directly followed by ':', a value of VCHAR/obs-text/SP/HTAB, CRLF line
 * ends; no obs-fold, bare CR or bare LF. Stops after the empty line
 * (msg.fs_done). Returns how far the bytes are good: len, the end of the
 * section, or the offending byte (with *why set). With trailers set, also
 * enforces LimitRequestFieldSize and LimitRequestFields (for the head,
 * llhttp's callbacks do). A problem is returned in *status and *why (not
 * recorded: for the head, llhttp may find an earlier one). */
size_t mpm__h1_fields_scan(mpm__h1_t *h, const char *data, size_t len, int trailers, int *status,
                           const char **why);

/* ---- chunked framing (http1_chunk.c) ---- */

/* Parses chunked body bytes: sizes, extensions, data, CRLFs, trailers.
 * Returns the bytes consumed and sets *ev to BODY (a span of data), END,
 * or NEED_MORE; on bad framing records the error and returns with
 * ev->type NEED_MORE and h->error_status set. */
size_t mpm__h1_chunk_feed(mpm__h1_t *h, const char *data, size_t len, mpm__h1_event_t *ev);

#endif
