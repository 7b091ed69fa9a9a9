#include "addrplan/address_lease.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CAPACITY_MAX 1000000
/* An IPv6 pool's host part can be 64 bits wide: leases come from its low 32 bits, more
 * than any capacity. */
#define POOL_BITS_MAX 32

struct pool {
    int present;
    struct ip_prefix hub;       /* the hub's address, the pool's length */
    struct ip_prefix network;   /* the pool itself */
    uint64_t size;              /* addresses, the first and last included */
    uint64_t cursor;            /* where the next search starts */
};

struct entry {
    char *identity;
    int family;
    uint8_t addr[16];
    unsigned held;              /* connections holding it; 0: recently released */
    uint64_t released;          /* when released (a sequence number): oldest goes first */
};

struct network {
    char *identity;
    struct ip_prefix prefix;
};

struct address_lease {
    size_t capacity;
    size_t sticky_max;
    size_t sticky_count;
    uint64_t release_seq;
    struct pool pools[ADDRESS_LEASE_FAMILIES];
    struct entry *leases;       /* pool leases, CAPACITY entries */
    size_t lease_count;
    struct entry *fixed;        /* fixed addresses, grown as added */
    size_t fixed_count;
    struct network *networks;   /* ADDRESS_LEASE_MAX_NETWORKS entries */
    size_t network_count;
};

static void say(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int family_index(int family)
{
    return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

static struct ip_prefix host(int family, const uint8_t *addr)
{
    struct ip_prefix p = { .family = family, .len = (uint8_t)ip_prefix_max_len(family) };
    memcpy(p.addr, addr, ip_prefix_addr_len(family));
    return p;
}

static const char *text(const struct ip_prefix *p, char *buf)
{
    return ip_prefix_format(p, buf, IP_PREFIX_TEXT_MAX);
}

static int same_addr(int family, const uint8_t *a, int family_b, const uint8_t *b)
{
    return family == family_b && memcmp(a, b, ip_prefix_addr_len(family)) == 0;
}

static int overlap(const struct ip_prefix *a, const struct ip_prefix *b)
{
    if (a->family != b->family)
        return 0;
    return a->len <= b->len ? ip_prefix_contains(a, b->family, b->addr)
                            : ip_prefix_contains(b, a->family, a->addr);
}

/* The pool's address at OFFSET (0..size-1): the offset goes into the low bits. */
static void pool_addr(const struct pool *p, uint64_t offset, uint8_t *out)
{
    size_t n = ip_prefix_addr_len(p->network.family);
    memcpy(out, p->network.addr, n);
    for (size_t i = 0; i < 4; i++)
        out[n - 1 - i] |= (uint8_t)(offset >> (8 * i));
}

/* 1 when ADDR is a pool's hub, first or last address: never a client's. */
static int reserved(const struct address_lease *al, int family, const uint8_t *addr)
{
    int f = family_index(family);
    const struct pool *p = f >= 0 ? &al->pools[f] : NULL;
    uint8_t edge[16];
    if (p == NULL || !p->present)
        return 0;
    if (same_addr(family, addr, p->hub.family, p->hub.addr))
        return 1;
    pool_addr(p, 0, edge);
    if (same_addr(family, addr, family, edge))
        return 1;
    pool_addr(p, p->size - 1, edge);
    return same_addr(family, addr, family, edge);
}

static struct entry *find(struct entry *list, size_t count, const char *identity, int family)
{
    for (size_t i = 0; i < count; i++)
        if (list[i].family == family && strcmp(list[i].identity, identity) == 0)
            return &list[i];
    return NULL;
}

static struct entry *holder(struct entry *list, size_t count, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < count; i++)
        if (same_addr(list[i].family, list[i].addr, family, addr))
            return &list[i];
    return NULL;
}

static const struct network *network_holding(const struct address_lease *al, int family,
                                             const uint8_t *addr)
{
    for (size_t i = 0; i < al->network_count; i++)
        if (ip_prefix_contains(&al->networks[i].prefix, family, addr))
            return &al->networks[i];
    return NULL;
}

struct address_lease *address_lease_new(size_t capacity, size_t sticky_max)
{
    struct address_lease *al = NULL;
    if (capacity == 0 || capacity > CAPACITY_MAX || sticky_max > capacity)
        return NULL;
    al = calloc(1, sizeof(*al));
    if (al == NULL)
        goto fail;
    al->capacity = capacity;
    al->sticky_max = sticky_max;
    al->leases = calloc(capacity, sizeof(*al->leases));
    al->networks = calloc(ADDRESS_LEASE_MAX_NETWORKS, sizeof(*al->networks));
    if (al->leases == NULL || al->networks == NULL)
        goto fail;
    return al;
fail:
    address_lease_free(al);
    return NULL;
}

void address_lease_free(struct address_lease *al)
{
    if (al == NULL)
        return;
    for (size_t i = 0; i < al->lease_count; i++)
        free(al->leases[i].identity);
    for (size_t i = 0; i < al->fixed_count; i++)
        free(al->fixed[i].identity);
    for (size_t i = 0; i < al->network_count; i++)
        free(al->networks[i].identity);
    free(al->leases);
    free(al->fixed);
    free(al->networks);
    free(al);
}

int address_lease_add_pool(struct address_lease *al, const struct ip_prefix *hub, char *err,
                           size_t errlen)
{
    char a[IP_PREFIX_TEXT_MAX], b[IP_PREFIX_TEXT_MAX];
    int f = family_index(hub->family);
    unsigned host_bits = ip_prefix_max_len(hub->family) - hub->len;
    if (f < 0) {
        say(err, errlen, "a pool must be IPv4 or IPv6");
        return -1;
    }
    if (al->pools[f].present) {
        say(err, errlen, "pool %s: there is a pool of this family already (%s)", text(hub, a),
            text(&al->pools[f].hub, b));
        return -1;
    }
    if (host_bits < 2) {
        say(err, errlen, "pool %s: too small, it leaves no address for a client", text(hub, a));
        return -1;
    }
    struct ip_prefix network = ip_prefix_network(hub);
    if (ip_prefix_is_network(hub)) {
        say(err, errlen, "pool %s: give the hub's address in it, not the network's", text(hub, a));
        return -1;
    }
    for (size_t i = 0; i < al->network_count; i++)
        if (overlap(&network, &al->networks[i].prefix)) {
            say(err, errlen, "pool %s overlaps network %s behind %s", text(&network, a),
                text(&al->networks[i].prefix, b), al->networks[i].identity);
            return -1;
        }
    struct pool p = { .present = 1, .hub = *hub, .network = network,
                      .size = (uint64_t)1 << (host_bits < POOL_BITS_MAX ? host_bits : POOL_BITS_MAX) };
    uint8_t edge[16];
    pool_addr(&p, p.size - 1, edge);
    if (same_addr(hub->family, hub->addr, hub->family, network.addr) ||
        same_addr(hub->family, hub->addr, hub->family, edge)) {
        say(err, errlen, "pool %s: the hub's address is the pool's first or last", text(hub, a));
        return -1;
    }
    al->pools[f] = p;
    for (size_t i = 0; i < al->fixed_count; i++)
        if (reserved(al, al->fixed[i].family, al->fixed[i].addr)) {
            struct ip_prefix fixed = host(al->fixed[i].family, al->fixed[i].addr);
            say(err, errlen, "pool %s: the fixed address %s of %s is the hub's or the pool's "
                "first or last", text(hub, a), text(&fixed, b), al->fixed[i].identity);
            memset(&al->pools[f], 0, sizeof(al->pools[f]));
            return -1;
        }
    return 0;
}

int address_lease_add_fixed(struct address_lease *al, const char *identity,
                            const struct ip_prefix *addr, char *err, size_t errlen)
{
    char a[IP_PREFIX_TEXT_MAX], b[IP_PREFIX_TEXT_MAX];
    struct ip_prefix shown = host(addr->family, addr->addr);
    const struct entry *other;
    const struct network *net;
    if (family_index(addr->family) < 0) {
        say(err, errlen, "fixed address of %s: must be IPv4 or IPv6", identity);
        return -1;
    }
    if ((other = find(al->fixed, al->fixed_count, identity, addr->family)) != NULL) {
        struct ip_prefix had = host(other->family, other->addr);
        say(err, errlen, "fixed address %s of %s: it has %s already", text(&shown, a), identity,
            text(&had, b));
        return -1;
    }
    if ((other = holder(al->fixed, al->fixed_count, addr->family, addr->addr)) != NULL) {
        say(err, errlen, "fixed address %s of %s is the fixed address of %s", text(&shown, a),
            identity, other->identity);
        return -1;
    }
    if (reserved(al, addr->family, addr->addr)) {
        say(err, errlen, "fixed address %s of %s is the hub's or a pool's first or last",
            text(&shown, a), identity);
        return -1;
    }
    if ((net = network_holding(al, addr->family, addr->addr)) != NULL &&
        strcmp(net->identity, identity) != 0) {
        say(err, errlen, "fixed address %s of %s lies in network %s behind %s", text(&shown, a),
            identity, text(&net->prefix, b), net->identity);
        return -1;
    }
    if ((other = holder(al->leases, al->lease_count, addr->family, addr->addr)) != NULL &&
        strcmp(other->identity, identity) != 0) {
        say(err, errlen, "fixed address %s of %s is leased to %s", text(&shown, a), identity,
            other->identity);
        return -1;
    }
    struct entry *grown = realloc(al->fixed, (al->fixed_count + 1) * sizeof(*grown));
    char *copy = strdup(identity);
    if (grown != NULL)
        al->fixed = grown;
    if (grown == NULL || copy == NULL) {
        free(copy);
        say(err, errlen, "fixed address of %s: out of memory", identity);
        return -1;
    }
    struct entry *e = &al->fixed[al->fixed_count++];
    memset(e, 0, sizeof(*e));
    e->identity = copy;
    e->family = addr->family;
    memcpy(e->addr, addr->addr, sizeof(e->addr));
    return 0;
}

int address_lease_add_network(struct address_lease *al, const char *identity,
                              const struct ip_prefix *network, char *err, size_t errlen)
{
    char a[IP_PREFIX_TEXT_MAX], b[IP_PREFIX_TEXT_MAX];
    if (family_index(network->family) < 0) {
        say(err, errlen, "a network behind %s must be IPv4 or IPv6", identity);
        return -1;
    }
    if (!ip_prefix_is_network(network)) {
        struct ip_prefix fixed = ip_prefix_network(network);
        say(err, errlen, "network %s behind %s has host bits set: write %s", text(network, a),
            identity, text(&fixed, b));
        return -1;
    }
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++)
        if (al->pools[f].present && overlap(network, &al->pools[f].network)) {
            say(err, errlen, "network %s behind %s overlaps the pool %s", text(network, a),
                identity, text(&al->pools[f].network, b));
            return -1;
        }
    for (size_t i = 0; i < al->network_count; i++)
        if (overlap(network, &al->networks[i].prefix)) {
            say(err, errlen, "network %s behind %s overlaps network %s behind %s",
                text(network, a), identity, text(&al->networks[i].prefix, b),
                al->networks[i].identity);
            return -1;
        }
    for (size_t i = 0; i < al->fixed_count; i++)
        if (strcmp(al->fixed[i].identity, identity) != 0 &&
            ip_prefix_contains(network, al->fixed[i].family, al->fixed[i].addr)) {
            struct ip_prefix fixed = host(al->fixed[i].family, al->fixed[i].addr);
            say(err, errlen, "network %s behind %s holds the fixed address %s of %s",
                text(network, a), identity, text(&fixed, b), al->fixed[i].identity);
            return -1;
        }
    if (al->network_count == ADDRESS_LEASE_MAX_NETWORKS) {
        say(err, errlen, "network %s behind %s: more than %d networks behind clients",
            text(network, a), identity, ADDRESS_LEASE_MAX_NETWORKS);
        return -1;
    }
    char *copy = strdup(identity);
    if (copy == NULL) {
        say(err, errlen, "network %s behind %s: out of memory", text(network, a), identity);
        return -1;
    }
    al->networks[al->network_count++] = (struct network){ .identity = copy, .prefix = *network };
    return 0;
}

size_t address_lease_networks(const struct address_lease *al, const char *identity,
                              struct ip_prefix *out, size_t max)
{
    size_t count = 0;
    for (size_t i = 0; i < al->network_count; i++)
        if (strcmp(al->networks[i].identity, identity) == 0) {
            if (count < max)
                out[count] = al->networks[i].prefix;
            count++;
        }
    return count;
}

static int in_use(const struct address_lease *al, int family, const uint8_t *addr)
{
    return reserved(al, family, addr) || holder(al->fixed, al->fixed_count, family, addr) ||
           holder(al->leases, al->lease_count, family, addr);
}

/* The recently released lease released first, of FAMILY (0: any). */
static struct entry *oldest_released(struct address_lease *al, int family)
{
    struct entry *oldest = NULL;
    for (size_t i = 0; i < al->lease_count; i++) {
        struct entry *e = &al->leases[i];
        if (e->held == 0 && (family == 0 || e->family == family) &&
            (oldest == NULL || e->released < oldest->released))
            oldest = e;
    }
    return oldest;
}

static void remove_lease(struct address_lease *al, struct entry *e)
{
    if (e->held == 0)
        al->sticky_count--;
    free(e->identity);
    *e = al->leases[--al->lease_count];
    memset(&al->leases[al->lease_count], 0, sizeof(*e));
}

/* Adds IDENTITY's lease of ADDR (FAMILY), held once, making room by dropping the lease
 * released longest ago when the plan is at capacity. Returns it, or NULL with ERR. */
static struct entry *append_lease(struct address_lease *al, const char *identity, int family,
                                  const uint8_t *addr, char *err, size_t errlen)
{
    if (al->lease_count == al->capacity) {
        struct entry *gone = oldest_released(al, 0);
        if (gone == NULL) {
            say(err, errlen, "no address for %s: all %zu leases are held", identity,
                al->capacity);
            return NULL;
        }
        remove_lease(al, gone);
    }
    char *copy = strdup(identity);
    if (copy == NULL) {
        say(err, errlen, "no address for %s: out of memory", identity);
        return NULL;
    }
    struct entry *e = &al->leases[al->lease_count++];
    *e = (struct entry){ .identity = copy, .family = family, .held = 1 };
    memcpy(e->addr, addr, ip_prefix_addr_len(family));
    return e;
}

/* Leases IDENTITY a new address of family index F, held once. Returns 0 or -1 with ERR. */
static int lease_new(struct address_lease *al, int f, const char *identity, char *err,
                     size_t errlen)
{
    char a[IP_PREFIX_TEXT_MAX];
    struct pool *p = &al->pools[f];
    int family = p->network.family;
    uint64_t candidates = p->size - 2;
    /* Fewer addresses are taken than this: one of as many in a row is free. */
    uint64_t steps = (uint64_t)al->lease_count + al->fixed_count + ADDRESS_LEASE_FAMILIES + 1;
    uint8_t addr[16];
    int found = 0;
    if (steps > candidates)
        steps = candidates;
    for (uint64_t step = 0; step < steps && !found; step++) {
        pool_addr(p, 1 + (p->cursor + step) % candidates, addr);
        if (!in_use(al, family, addr)) {
            found = 1;
            p->cursor = (p->cursor + step + 1) % candidates;
        }
    }
    if (found)
        return append_lease(al, identity, family, addr, err, errlen) != NULL ? 0 : -1;
    /* Every address is held or kept for a client gone recently: the one gone longest
     * gives its address up. */
    struct entry *e = oldest_released(al, family);
    char *copy = e != NULL ? strdup(identity) : NULL;
    if (copy == NULL) {
        if (e == NULL)
            say(err, errlen, "no address for %s: the pool %s is full, all its %llu addresses "
                "are held", identity, text(&p->network, a), (unsigned long long)candidates);
        else
            say(err, errlen, "no address for %s: out of memory", identity);
        return -1;
    }
    free(e->identity);
    al->sticky_count--;
    e->identity = copy;
    e->held = 1;
    e->released = 0;
    return 0;
}

static void hold(struct address_lease *al, struct entry *e)
{
    if (e->held++ == 0)
        al->sticky_count--;
}

static void let_go(struct address_lease *al, struct entry *e)
{
    if (--e->held > 0)
        return;
    e->released = ++al->release_seq;
    al->sticky_count++;
    if (al->sticky_count > al->sticky_max)
        remove_lease(al, oldest_released(al, 0));
}

static const int families[ADDRESS_LEASE_FAMILIES] = { AF_INET, AF_INET6 };

/* Counts IDENTITY's fixed address of family index F held once more. Returns 1 when it
 * has one there, else 0. */
static int hold_fixed(struct address_lease *al, const char *identity, int f)
{
    struct entry *e = find(al->fixed, al->fixed_count, identity, families[f]);
    if (e == NULL)
        return 0;
    e->held++;
    return 1;
}

/* Writes into OUT IDENTITY's address of each family DONE marks taken (not 0). Returns
 * 0, or -1 with ERR when there is none. */
static int fill_grant(struct address_lease *al, const char *identity, const int *done,
                      struct address_lease_grant *out, char *err, size_t errlen)
{
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        const struct entry *e = find(al->fixed, al->fixed_count, identity, families[f]);
        if (e == NULL && done[f] != 0)
            e = find(al->leases, al->lease_count, identity, families[f]);
        if (e != NULL && done[f] != 0)
            out->addresses[out->count++] = host(e->family, e->addr);
    }
    if (out->count == 0) {
        say(err, errlen, "no address for %s: it has no fixed address and the hub no pool",
            identity);
        return -1;
    }
    return 0;
}

int address_lease_take(struct address_lease *al, const char *identity,
                       struct address_lease_grant *out, char *err, size_t errlen)
{
    /* What this call did, undone when a later family fails: 1 held, 2 leased anew. */
    int done[ADDRESS_LEASE_FAMILIES] = { 0 };
    int rc = -1;
    memset(out, 0, sizeof(*out));
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        if (hold_fixed(al, identity, f)) {
            done[f] = 1;
            continue;
        }
        if (!al->pools[f].present)
            continue;
        struct entry *e;
        if ((e = find(al->leases, al->lease_count, identity, families[f])) != NULL) {
            hold(al, e);
            done[f] = 1;
        } else if (lease_new(al, f, identity, err, errlen) == 0) {
            done[f] = 2;
        } else {
            goto undo;
        }
    }
    if (fill_grant(al, identity, done, out, err, errlen) < 0)
        return -1;
    return 0;
undo:
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        struct entry *e = find(al->fixed, al->fixed_count, identity, families[f]);
        if (e != NULL && done[f] != 0) {
            e->held--;
            continue;
        }
        e = find(al->leases, al->lease_count, identity, families[f]);
        if (e != NULL && done[f] == 2)
            remove_lease(al, e);
        else if (e != NULL && done[f] == 1)
            let_go(al, e);
    }
    return rc;
}

size_t address_lease_pools_for(const struct address_lease *al, const char *identity,
                               struct ip_prefix *pools)
{
    size_t n = 0;
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++)
        if (al->pools[f].present && find(al->fixed, al->fixed_count, identity, families[f]) == NULL)
            pools[n++] = al->pools[f].hub;
    return n;
}

int address_lease_may_lease(const struct address_lease *al, const char *identity,
                            const struct ip_prefix *addr)
{
    int f = family_index(addr->family);
    if (f < 0 || !al->pools[f].present)
        return 0;
    const struct pool *p = &al->pools[f];
    size_t n = ip_prefix_addr_len(addr->family);
    uint64_t low = 0;
    for (size_t i = 0; i < 4; i++)
        low |= (uint64_t)addr->addr[n - 1 - i] << (8 * i);
    /* The pool's size is a power of two: its offsets are the low bits. */
    uint64_t offset = low & (p->size - 1);
    uint8_t expect[16];
    pool_addr(p, offset, expect);
    if (!same_addr(addr->family, addr->addr, addr->family, expect) || offset == 0 ||
        offset >= p->size - 1 || reserved(al, addr->family, addr->addr) ||
        network_holding(al, addr->family, addr->addr) != NULL)
        return 0;
    const struct entry *fixed = holder(al->fixed, al->fixed_count, addr->family, addr->addr);
    return fixed == NULL || strcmp(fixed->identity, identity) == 0;
}

/* IDENTITY's address of family index F in GIVEN, or NULL. */
static const struct ip_prefix *given_of(const struct ip_prefix *given, size_t count, int f)
{
    for (size_t i = 0; i < count; i++)
        if (given[i].family == families[f])
            return &given[i];
    return NULL;
}

/* Checks what address_lease_take_given would do, changing nothing. */
static int given_fits(struct address_lease *al, const char *identity,
                      const struct ip_prefix *given, size_t count, char *err, size_t errlen)
{
    char a[IP_PREFIX_TEXT_MAX], b[IP_PREFIX_TEXT_MAX];
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        if (!al->pools[f].present || find(al->fixed, al->fixed_count, identity, families[f]))
            continue;
        const struct ip_prefix *g = given_of(given, count, f);
        if (g == NULL) {
            say(err, errlen, "no address for %s: none of the pool %s was given", identity,
                text(&al->pools[f].network, a));
            return -1;
        }
        if (!address_lease_may_lease(al, identity, g)) {
            say(err, errlen, "no address for %s: %s is not a client address of the pool %s",
                identity, text(g, a), text(&al->pools[f].network, b));
            return -1;
        }
        const struct entry *h = holder(al->leases, al->lease_count, g->family, g->addr);
        if (h != NULL && h->held > 0 && strcmp(h->identity, identity) != 0) {
            say(err, errlen, "no address for %s: %s is held here by %s", identity, text(g, a),
                h->identity);
            return -1;
        }
        const struct entry *e = find(al->leases, al->lease_count, identity, families[f]);
        if (e != NULL && e->held > 0 && !same_addr(e->family, e->addr, g->family, g->addr)) {
            struct ip_prefix mine = host(e->family, e->addr);
            say(err, errlen, "no address for %s: it holds %s here, not %s", identity,
                text(&mine, a), text(g, b));
            return -1;
        }
    }
    return 0;
}

int address_lease_take_given(struct address_lease *al, const char *identity,
                             const struct ip_prefix *given, size_t count,
                             struct address_lease_grant *out, char *err, size_t errlen)
{
    int done[ADDRESS_LEASE_FAMILIES] = { 0 };
    memset(out, 0, sizeof(*out));
    if (given_fits(al, identity, given, count, err, errlen) < 0)
        return -1;
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        if (hold_fixed(al, identity, f)) {
            done[f] = 1;
            continue;
        }
        if (!al->pools[f].present)
            continue;
        struct entry *e;
        const struct ip_prefix *g = given_of(given, count, f);
        struct entry *other = holder(al->leases, al->lease_count, g->family, g->addr);
        if (other != NULL && strcmp(other->identity, identity) != 0)
            remove_lease(al, other);   /* released (checked): the fleet gave it away */
        if ((e = find(al->leases, al->lease_count, identity, families[f])) != NULL) {
            memcpy(e->addr, g->addr, sizeof(e->addr));
            hold(al, e);
        } else if (append_lease(al, identity, g->family, g->addr, err, errlen) == NULL) {
            address_lease_release(al, identity);
            return -1;
        }
        done[f] = 1;
    }
    return fill_grant(al, identity, done, out, err, errlen);
}

int address_lease_release(struct address_lease *al, const char *identity)
{
    int released = 0;
    for (size_t i = 0; i < al->fixed_count; i++)
        if (al->fixed[i].held > 0 && strcmp(al->fixed[i].identity, identity) == 0) {
            al->fixed[i].held--;
            released = 1;
        }
    /* let_go may move the last entry into a removed one's place: search again. */
    for (int f = 0; f < ADDRESS_LEASE_FAMILIES; f++) {
        int family = f == 0 ? AF_INET : AF_INET6;
        struct entry *e = find(al->leases, al->lease_count, identity, family);
        if (e != NULL && e->held > 0) {
            let_go(al, e);
            released = 1;
        }
    }
    return released ? 0 : -1;
}

size_t address_lease_held(const struct address_lease *al)
{
    size_t held = 0;
    for (size_t i = 0; i < al->lease_count; i++)
        held += al->leases[i].held > 0;
    for (size_t i = 0; i < al->fixed_count; i++)
        held += al->fixed[i].held > 0;
    return held;
}
