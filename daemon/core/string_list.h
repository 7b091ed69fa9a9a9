/* string_list — a growable list of owned strings (allow rules, SANs, OUs). */
#ifndef KTLSTUN_STRING_LIST_H
#define KTLSTUN_STRING_LIST_H

#include <stddef.h>

struct string_list {
    size_t count;
    char **items;
};

/* Appends a copy of the LEN bytes at TEXT (NUL-terminated in the copy).
 * Returns 0, or -1 when out of memory. */
int string_list_append(struct string_list *list, const char *text, size_t len);

/* Splits TEXT at commas, trims blanks around each item and appends the non-empty ones.
 * Returns the number appended, or -1 when out of memory. */
int string_list_split(struct string_list *list, const char *text);

/* Joins the items with SEPARATOR into a new string the caller frees ("" when empty),
 * or NULL when out of memory. */
char *string_list_join(const struct string_list *list, const char *separator);

/* Frees every item and resets LIST to empty. */
void string_list_clear(struct string_list *list);

#endif
