#include "core/string_list.h"

#include <stdlib.h>
#include <string.h>

int string_list_append(struct string_list *list, const char *text, size_t len)
{
    char **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    list->items = grown;
    char *copy = strndup(text, len);
    if (copy == NULL)
        return -1;
    list->items[list->count++] = copy;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int string_list_split(struct string_list *list, const char *text)
{
    int appended = 0;
    const char *cursor = text;
    for (;;) {
        const char *end = strchr(cursor, ',');
        const char *stop = end ? end : cursor + strlen(cursor);
        const char *first = cursor;
        while (first < stop && is_blank(*first))
            first++;
        const char *last = stop;
        while (last > first && is_blank(last[-1]))
            last--;
        if (last > first) {
            if (string_list_append(list, first, (size_t)(last - first)) < 0)
                return -1;
            appended++;
        }
        if (end == NULL)
            break;
        cursor = end + 1;
    }
    return appended;
}

char *string_list_join(const struct string_list *list, const char *separator)
{
    size_t total = 1;
    for (size_t i = 0; i < list->count; i++)
        total += strlen(list->items[i]) + strlen(separator);
    char *joined = malloc(total);
    if (joined == NULL)
        return NULL;
    size_t used = 0, separator_len = strlen(separator);
    for (size_t i = 0; i < list->count; i++) {
        if (i > 0) {
            memcpy(joined + used, separator, separator_len);
            used += separator_len;
        }
        size_t item_len = strlen(list->items[i]);
        memcpy(joined + used, list->items[i], item_len);
        used += item_len;
    }
    joined[used] = '\0';
    return joined;
}

void string_list_clear(struct string_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}
