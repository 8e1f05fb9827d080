/* mpmserve: GET/HEAD /files/PATH, static files under --root.
 *
 * The path is percent-decoded first; then a NUL, an encoded '/' (%2F) or a
 * ".." segment is refused (403) before anything touches the file system.
 * The file is opened one component at a time with openat() relative to the
 * root's directory fd, each with O_NOFOLLOW, so no symbolic link is ever
 * followed (not even one pointing inside the root) and nothing outside the
 * root can be reached. Directories, devices and FIFOs are 403, missing files
 * 404. The body goes out with mpm_response_send_file() (sendfile), with an
 * ETag and Last-Modified, honouring conditional requests (304, 412) and one
 * byte range (206, 416), as httpd and nginx do. */
#include "mpmserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS_PATH_MAX 4096

/* Decodes %XX into out with the library's decoder, which refuses an
 * encoded NUL or '/' (and bad escapes). Returns 0, 403 for those (and for
 * an encoded or literal '\\', a separator on other systems), 400 for a
 * path too long. */
static int decode_path(const char *in, char *out, size_t cap)
{
    int n = mpm_percent_decode(in, strlen(in), out, cap, 0);
    if (n == MPM_ERANGE)
        return 400;
    if (n < 0 || strchr(out, '\\'))
        return 403;
    return 0;
}

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"txt", "text/plain"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"csv", "text/csv"},
    {"md", "text/markdown"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
    {"ogg", "audio/ogg"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

static const char *content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
                return mime_types[i].type;
    }
    return "application/octet-stream";
}

/* Opens the decoded relative path under root_fd without following any
 * symlink. Returns an fd or an HTTP status (negated) on failure. */
static int open_beneath(int root_fd, char *rel)
{
    int dir = root_fd;
    char *save = NULL;
    char *seg = strtok_r(rel, "/", &save);
    if (!seg)
        return -403; /* the root itself: a directory */
    while (seg) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(seg, ".") == 0) {
            seg = next;
            if (!seg) {
                if (dir != root_fd)
                    close(dir);
                return -403; /* ends in "/.": a directory */
            }
            continue;
        }
        if (strcmp(seg, "..") == 0) {
            if (dir != root_fd)
                close(dir);
            return -403;
        }
        int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (next ? O_DIRECTORY : O_NONBLOCK);
        int fd = openat(dir, seg, flags);
        int status = 0;
        if (fd < 0) {
            struct stat lsb;
            if (errno == ENOENT)
                status = -404;
            else if (errno == ENOTDIR && fstatat(dir, seg, &lsb, AT_SYMLINK_NOFOLLOW) == 0 &&
                     !S_ISLNK(lsb.st_mode))
                status = -404; /* a file used as a directory */
            else
                status = -403; /* a symlink (ELOOP, or ENOTDIR mid-path), EACCES, ... */
        }
        if (dir != root_fd)
            close(dir);
        if (fd < 0)
            return status;
        dir = fd;
        seg = next;
    }
    return dir;
}

/* A file's validators: a strong ETag from its mtime and size (nginx's
 * form: a file rewritten within the same second with the same size keeps
 * its tag) and its Last-Modified. */
typedef struct file_tags {
    char etag[48];
    char modified[MS_HTTP_DATE_LEN];
} file_tags_t;

static void make_tags(const struct stat *sb, file_tags_t *tags)
{
    snprintf(tags->etag, sizeof tags->etag, "\"%llx-%llx\"", (unsigned long long)sb->st_mtime,
             (unsigned long long)sb->st_size);
    ms_http_date(sb->st_mtime, tags->modified);
}

/* The preconditions in RFC 9110 §13.2.2's order: If-Match, else
 * If-Unmodified-Since (412 when false); then If-None-Match, else
 * If-Modified-Since (304 when false: only GET and HEAD get here). A date
 * that does not parse is ignored, as the RFC asks, and so is an
 * If-Modified-Since in the future, as httpd does (no clock of ours
 * vouches for it). 0: serve the file. */
static int precondition_status(mpm_request_t *req, const struct stat *sb, const char *etag)
{
    const char *im = mpm_request_header(req, "If-Match");
    const char *ius = mpm_request_header(req, "If-Unmodified-Since");
    const char *inm = mpm_request_header(req, "If-None-Match");
    const char *ims = mpm_request_header(req, "If-Modified-Since");
    time_t t;
    if (im ? !ms_etag_list_matches(im, etag, 1)
           : ius && ms_http_date_parse(ius, &t) == 0 && sb->st_mtime > t)
        return 412;
    if (inm ? ms_etag_list_matches(inm, etag, 0)
            : ims && ms_http_date_parse(ims, &t) == 0 && sb->st_mtime <= t && t <= time(NULL))
        return 304;
    return 0;
}

/* Whether a Range field is honoured (§14.2, §13.1.5): on GET only, and
 * with If-Range only when it is this ETag (strong) or exactly this
 * Last-Modified; otherwise the whole file goes out. */
static int range_applies(mpm_request_t *req, const file_tags_t *tags)
{
    if (strcmp(mpm_request_method(req), "GET") != 0)
        return 0;
    const char *if_range = mpm_request_header(req, "If-Range");
    if (!if_range)
        return 1;
    return strcmp(if_range, if_range[0] == '"' ? tags->etag : tags->modified) == 0;
}

/* The file, whole (200) or one byte range (206), or 304/412/416 as the
 * request's conditions and range decide. */
static void send_file(mpm_request_t *req, int fd, const struct stat *sb, const char *name)
{
    file_tags_t tags;
    make_tags(sb, &tags);
    mpm_response_add_header(req, "ETag", tags.etag);
    mpm_response_add_header(req, "Last-Modified", tags.modified);
    int pre = precondition_status(req, sb, tags.etag);
    if (pre == 304) {
        mpm_response_set_status(req, 304);
        mpm_response_send(req, "", 0);
        return;
    }
    if (pre == 412) {
        ms_send_text(req, 412, "Precondition Failed\n");
        return;
    }
    mpm_response_add_header(req, "Accept-Ranges", "bytes");
    const char *range = mpm_request_header(req, "Range");
    off_t first = 0, last = sb->st_size - 1;
    int ranged = range && range_applies(req, &tags) ? ms_range_parse(range, sb->st_size, &first, &last) : 0;
    char content_range[80];
    if (ranged < 0) {
        snprintf(content_range, sizeof content_range, "bytes */%lld", (long long)sb->st_size);
        mpm_response_add_header(req, "Content-Range", content_range);
        ms_send_text(req, 416, "Range Not Satisfiable\n");
        return;
    }
    mpm_response_add_header(req, "Content-Type", content_type(name));
    if (ranged > 0) {
        snprintf(content_range, sizeof content_range, "bytes %lld-%lld/%lld", (long long)first,
                 (long long)last, (long long)sb->st_size);
        mpm_response_set_status(req, 206);
        mpm_response_add_header(req, "Content-Range", content_range);
    }
    mpm_response_send_file(req, fd, first, (size_t)(last - first + 1));
}

void ms_files(mpm_request_t *req, const ms_app_t *app, const char *rest)
{
    char rel[MS_PATH_MAX];
    int st = decode_path(rest, rel, sizeof rel);
    if (st == 400) {
        ms_send_text(req, 400, "Bad Request\n");
        return;
    }
    if (st == 403) {
        ms_send_text(req, 403, "Forbidden\n");
        return;
    }
    char name[MS_PATH_MAX];
    memcpy(name, rel, strlen(rel) + 1);

    int fd = open_beneath(app->root_fd, rel);
    if (fd < 0) {
        if (fd == -404)
            ms_send_text(req, 404, "Not Found\n");
        else
            ms_send_text(req, 403, "Forbidden\n");
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        ms_send_text(req, 403, "Forbidden\n");
        return;
    }
    /* A trailing '/' after a file name ("a.txt/") names a directory. */
    size_t nlen = strlen(name);
    if (nlen > 0 && name[nlen - 1] == '/') {
        close(fd);
        ms_send_text(req, 404, "Not Found\n");
        return;
    }
    send_file(req, fd, &sb, name);
    close(fd);
}
