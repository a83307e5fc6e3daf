/* common/strmap.c: the string-keyed map and its iterator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "tests/unit/unit.h"

static int freed;

static void count_free(void *v)
{
    (void)v;
    freed++;
}

static void test_put_get_remove(void)
{
    struct strmap m;
    strmap_init(&m);
    int a = 1, b = 2;
    void *old = &a;
    CHECK_INT(strmap_set(&m, "a", &a, &old), 0);
    CHECK(old == NULL);
    CHECK_INT(strmap_set(&m, "a", &b, &old), 0);
    CHECK(old == &a);
    CHECK(strmap_get(&m, "a") == &b);
    CHECK(strmap_get(&m, "b") == NULL);
    CHECK_INT(m.len, 1);
    CHECK(strmap_remove(&m, "a") == &b);
    CHECK(strmap_remove(&m, "a") == NULL);
    CHECK_INT(m.len, 0);
    strmap_clear(&m, NULL);
}

/* Many keys, so that the map grows: the iterator visits each exactly once. */
static void test_iterator_visits_each_once(void)
{
    struct strmap m;
    strmap_init(&m);
    enum { N = 1000 };
    static int values[N];
    char key[16];
    for (int i = 0; i < N; i++) {
        values[i] = i;
        snprintf(key, sizeof(key), "k%d", i);
        CHECK_INT(strmap_set(&m, key, &values[i], NULL), 0);
    }
    static int seen[N];
    struct strmap_iter it = strmap_iter(&m);
    const char *k;
    void *v;
    int count = 0;
    while (strmap_next(&it, &k, &v)) {
        int i = *(int *)v;
        snprintf(key, sizeof(key), "k%d", i);
        CHECK_STR(k, key);
        seen[i]++;
        count++;
    }
    CHECK_INT(count, N);
    int once = 0;
    for (int i = 0; i < N; i++)
        once += seen[i] == 1;
    CHECK_INT(once, N);
    CHECK_INT(strmap_next(&it, &k, &v), 0); /* stays at the end */
    freed = 0;
    strmap_clear(&m, count_free);
    CHECK_INT(freed, N);
}

static void test_iterator_on_empty_map(void)
{
    struct strmap m;
    strmap_init(&m);
    struct strmap_iter it = strmap_iter(&m);
    CHECK_INT(strmap_next(&it, NULL, NULL), 0);
    strmap_clear(&m, NULL);
}

int main(void)
{
    test_put_get_remove();
    test_iterator_visits_each_once();
    test_iterator_on_empty_map();
    return unit_report();
}
