/* key_suggest — what to tell someone who wrote a key ktlstun does not know: the
 * valid key it is a typo of, or ktlstun's name for a stunnel or ghostunnel key. */
#ifndef KTLSTUN_KEY_SUGGEST_H
#define KTLSTUN_KEY_SUGGEST_H

#include <stddef.h>

/* Returns the name among the COUNT CANDIDATES closest to NAME (edit distance, a swap
 * of two neighbouring letters counting as one edit), when it is close enough to be a
 * typo of it: one edit for names up to 6 characters, two for longer ones. Returns
 * NULL when none is that close. The result points into CANDIDATES. */
const char *key_suggest_closest(const char *name, const char *const *candidates, size_t count);

/* A key of another tunnel's configuration and what it is in ktlstun. */
struct key_suggest_foreign {
    const char *name;      /* as iniparser stores it: lowercase */
    const char *tool;      /* "stunnel" or "ghostunnel" */
    const char *ours;      /* the ktlstun key, or NULL when there is none */
    const char *note;      /* what to do instead when OURS is NULL, or more about it */
};

/* Returns what NAME (lowercase) is when it is a stunnel or ghostunnel key that
 * ktlstun does not know under that name, or NULL. The result is static. */
const struct key_suggest_foreign *key_suggest_foreign(const char *name);

#endif
