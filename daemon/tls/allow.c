// Wildcards: ghostunnel's wildcard package, extended to every rule kind.
// (Line comments here because the examples are full of slash-star.)
//
// A pattern and a value are cut into segments at a separator. A pattern segment that
// is exactly "*" matches one non-empty segment; exactly "**" matches zero or more
// segments (separators included) and, unlike ghostunnel, may stand anywhere, not only
// last; any other segment, including one like "foo*", is literal. One trailing
// separator is optional ("spiffe://x/a/" = "spiffe://x/a", "example.com." =
// "example.com"), as in ghostunnel.
//
//   allow_uri    separator '/' over the whole URI, exact case (ghostunnel --allow-uri):
//                "spiffe://td/*" matches "spiffe://td/web", not "spiffe://td/web/1";
//                "spiffe://td/**" matches both and "spiffe://td" itself; a "*" in
//                the authority position stands for the whole host[:port]
//                ("spiffe://*/web"), never for part of it.
//   allow_dns    separator '.', ASCII case-insensitive: "*.example.com" matches
//                "a.example.com", not "a.b.example.com" nor "example.com";
//                "**.example.com" matches all three.
//   allow_cn     as allow_dns (CNs are often host names; case-insensitive).
//   allow_ou     no separator, exact case: "*" matches any OU, anything else is exact.
//   allow_email  "LOCAL@DOMAIN": LOCAL is exact or "*", DOMAIN follows allow_dns
//                ("*@example.com", "alice@**.example.com"); a pattern without '@' is
//                exact or "*".
//
// A certificate value that needed escaping (NUL, control or non-ASCII bytes in an
// IA5String, see identity.h) never matches any rule, wildcard or not.
#include "tls/allow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

struct segment {
    const char *start;
    size_t len;
};

/* Cuts TEXT[0..LEN) at SEPARATOR ('\0': never) into a new array; *COUNT gets its size.
 * Returns NULL when out of memory. */
static struct segment *split_segments(const char *text, size_t len, char separator, size_t *count)
{
    if (separator != '\0' && len > 1 && text[len - 1] == separator)
        len--;
    size_t total = 1;
    for (size_t i = 0; separator != '\0' && i < len; i++)
        if (text[i] == separator)
            total++;
    struct segment *segments = calloc(total, sizeof(*segments));
    if (segments == NULL)
        return NULL;
    size_t index = 0, begin = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || (separator != '\0' && text[i] == separator)) {
            segments[index].start = text + begin;
            segments[index].len = i - begin;
            index++;
            begin = i + 1;
        }
    }
    *count = total;
    return segments;
}

static int segment_is(const struct segment *segment, const char *text)
{
    return segment->len == strlen(text) && memcmp(segment->start, text, segment->len) == 0;
}

static int segments_equal(const struct segment *a, const struct segment *b, int ignore_case)
{
    if (a->len != b->len)
        return 0;
    return ignore_case ? strncasecmp(a->start, b->start, a->len) == 0
                       : memcmp(a->start, b->start, a->len) == 0;
}

/* Dynamic programming over segments rather than backtracking, so a pattern with
 * several "**" costs (pattern segments x value segments), not an exponential. */
static int match_span(const char *pattern, size_t pattern_len, const char *value, size_t value_len,
                      char separator, int ignore_case)
{
    int matched = 0;
    size_t np = 0, nv = 0;
    unsigned char *table = NULL;
    struct segment *value_segments = NULL;
    struct segment *pattern_segments = split_segments(pattern, pattern_len, separator, &np);
    if (pattern_segments == NULL)
        goto oom;
    value_segments = split_segments(value, value_len, separator, &nv);
    if (value_segments == NULL)
        goto oom;
    /* table[i * (nv + 1) + j]: pattern segments i.. match value segments j.. */
    table = calloc((np + 1) * (nv + 1), 1);
    if (table == NULL)
        goto oom;
#define AT(i, j) table[(i) * (nv + 1) + (j)]
    AT(np, nv) = 1;
    for (size_t i = np; i-- > 0;) {
        const struct segment *p = &pattern_segments[i];
        int any_segments = segment_is(p, "**");
        int one_segment = segment_is(p, "*");
        for (size_t j = nv + 1; j-- > 0;) {
            if (any_segments)
                AT(i, j) = AT(i + 1, j) || (j < nv && AT(i, j + 1));
            else if (j == nv)
                AT(i, j) = 0;
            else if (one_segment)
                AT(i, j) = value_segments[j].len > 0 && AT(i + 1, j + 1);
            else
                AT(i, j) = segments_equal(p, &value_segments[j], ignore_case) && AT(i + 1, j + 1);
        }
    }
    matched = AT(0, 0);
#undef AT
    goto out;
oom:
    /* Failing closed: an allocation failure denies rather than admits. */
    log_error("out of memory while matching allow rule %.*s", (int)pattern_len, pattern);
out:
    free(table);
    free(value_segments);
    free(pattern_segments);
    return matched;
}

int allow_wildcard_match(const char *pattern, const char *value, char separator, int ignore_case)
{
    return match_span(pattern, strlen(pattern), value, strlen(value), separator, ignore_case);
}

static int match_cn(const char *pattern, const char *value)
{
    return allow_wildcard_match(pattern, value, '.', 1);
}

static int match_ou(const char *pattern, const char *value)
{
    return allow_wildcard_match(pattern, value, '\0', 0);
}

static int match_dns(const char *pattern, const char *value)
{
    return allow_wildcard_match(pattern, value, '.', 1);
}

static int match_uri(const char *pattern, const char *value)
{
    return allow_wildcard_match(pattern, value, '/', 0);
}

static int match_email(const char *pattern, const char *value)
{
    const char *pattern_at = strrchr(pattern, '@');
    const char *value_at = strrchr(value, '@');
    if (pattern_at == NULL)
        return allow_wildcard_match(pattern, value, '\0', 0);
    if (value_at == NULL)
        return 0;
    return match_span(pattern, (size_t)(pattern_at - pattern), value, (size_t)(value_at - value), '\0', 0) &&
           allow_wildcard_match(pattern_at + 1, value_at + 1, '.', 1);
}

enum { RULE_KIND_COUNT = 5 }; /* cn, ou, dns, uri, email */

struct rule_kind {
    const char *key;                 /* config key, "allow_dns"          */
    const char *label;               /* how values are shown, "DNS:"     */
    const char *missing;             /* "no DNS SAN"                     */
    const struct string_list *rules;
    char *const *values;
    size_t value_count;
    int (*match)(const char *pattern, const char *value);
};

static int kind_matches(const struct rule_kind *kind)
{
    for (size_t v = 0; v < kind->value_count; v++) {
        if (identity_value_has_escapes(kind->values[v]))
            continue;
        for (size_t r = 0; r < kind->rules->count; r++)
            if (kind->match(kind->rules->items[r], kind->values[v]))
                return 1;
    }
    return 0;
}

/* snprintf that appends at *POS and never runs past LEN (the text is cut, not lost
 * track of). */
__attribute__((format(printf, 4, 5)))
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    if (buf == NULL || *pos + 1 >= len)
        return;
    va_list args;
    va_start(args, fmt);
    int written = vsnprintf(buf + *pos, len - *pos, fmt, args);
    va_end(args);
    if (written > 0)
        *pos = (size_t)written < len - *pos ? *pos + (size_t)written : len - 1;
}

static void append_values(char *buf, size_t len, size_t *pos, const struct rule_kind *kind)
{
    append(buf, len, pos, "%s", kind->label);
    for (size_t v = 0; v < kind->value_count; v++)
        append(buf, len, pos, "%s%s", v > 0 ? "," : "", kind->values[v]);
}

/* "CN=mallory not in allow_cn", "no DNS SAN (allow_dns)",
 * "CN=mallory, DNS:m.example matched none of allow_cn, allow_dns". */
static void explain_no_match(const struct rule_kind *kinds, size_t kind_count, char *buf, size_t len,
                             size_t *pos)
{
    const struct rule_kind *configured[RULE_KIND_COUNT];
    size_t count = 0, with_values = 0;
    for (size_t k = 0; k < kind_count; k++) {
        if (kinds[k].rules->count == 0)
            continue;
        configured[count++] = &kinds[k];
        if (kinds[k].value_count > 0)
            with_values++;
    }
    if (count == 1) {
        if (with_values == 1) {
            append_values(buf, len, pos, configured[0]);
            append(buf, len, pos, " not in %s", configured[0]->key);
        } else {
            append(buf, len, pos, "%s (%s)", configured[0]->missing, configured[0]->key);
        }
        return;
    }
    size_t shown = 0;
    for (size_t k = 0; k < count; k++) {
        if (with_values > 0 && configured[k]->value_count == 0)
            continue;
        append(buf, len, pos, "%s", shown++ > 0 ? ", " : "");
        if (with_values > 0)
            append_values(buf, len, pos, configured[k]);
        else
            append(buf, len, pos, "%s", configured[k]->missing);
    }
    append(buf, len, pos, "%s", with_values > 0 ? " matched none of " : " (");
    for (size_t k = 0; k < count; k++)
        append(buf, len, pos, "%s%s", k > 0 ? ", " : "", configured[k]->key);
    if (with_values == 0)
        append(buf, len, pos, ")");
}

static int pin_matches(const struct string_list *pins, const char *spki_sha256)
{
    for (size_t i = 0; i < pins->count; i++)
        if (strcasecmp(pins->items[i], spki_sha256) == 0)
            return 1;
    return 0;
}

int allow_check(const struct tunnel_config *tunnel, const struct identity *id, char *reason,
                size_t reason_len)
{
    const struct rule_kind kinds[RULE_KIND_COUNT] = {
        {"allow_cn", "CN=", "no CN", &tunnel->allow_cn, &id->cn, id->cn != NULL ? 1 : 0, match_cn},
        {"allow_ou", "OU=", "no OU", &tunnel->allow_ou, id->ou.items, id->ou.count, match_ou},
        {"allow_dns", "DNS:", "no DNS SAN", &tunnel->allow_dns, id->dns.items, id->dns.count, match_dns},
        {"allow_uri", "URI:", "no URI SAN", &tunnel->allow_uri, id->uri.items, id->uri.count, match_uri},
        {"allow_email", "email:", "no email SAN", &tunnel->allow_email, id->email.items, id->email.count,
         match_email},
    };
    size_t kind_count = RULE_KIND_COUNT;
    size_t pos = 0;
    if (reason != NULL && reason_len > 0)
        reason[0] = '\0';

    int any_rule = 0, rule_matched = 0;
    for (size_t k = 0; k < kind_count && !rule_matched; k++) {
        if (kinds[k].rules->count == 0)
            continue;
        any_rule = 1;
        rule_matched = kind_matches(&kinds[k]);
    }
    int names_ok = !any_rule || rule_matched;
    if (!names_ok)
        explain_no_match(kinds, kind_count, reason, reason_len, &pos);

    int pin_ok = tunnel->pin_sha256.count == 0 || pin_matches(&tunnel->pin_sha256, id->spki_sha256);
    if (!pin_ok)
        append(reason, reason_len, &pos, "%spublic key pin mismatch (pin_sha256): spki sha256 %s",
               names_ok ? "" : "; ", id->spki_sha256);
    return names_ok && pin_ok;
}
