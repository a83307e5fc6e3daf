/* common/packlist.c: packed sorted string lists. */
#include <errno.h>
#include <string.h>

#include "common/packlist.h"
#include "tests/unit/unit.h"

static void test_pack_and_search(void)
{
    struct strlist l = STRLIST_INIT;
    const char *names[] = {"a", "a/b", "b", "latest", "v1", "v10", "v2"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        strlist_push(&l, names[i]);
    strlist_sort_unique(&l);
    struct packlist p;
    CHECK_INT(packlist_from(&l, &p), 0);
    CHECK_INT(p.len, 7);
    for (size_t i = 0; i < l.len; i++)
        CHECK_STR(packlist_at(&p, i), l.items[i]);
    CHECK(packlist_contains(&p, "v10"));
    CHECK(!packlist_contains(&p, "v3"));
    CHECK(!packlist_contains(&p, ""));
    CHECK_INT(packlist_lower_bound(&p, "a/"), 1);
    CHECK_INT(packlist_lower_bound(&p, "c"), 3);
    CHECK_INT(packlist_lower_bound(&p, "z"), 7);
    CHECK_INT(packlist_lower_bound(&p, ""), 0);
    CHECK_INT(packlist_bytes(&p), 2 + 4 + 2 + 7 + 3 + 4 + 3 + 7 * 4);
    packlist_free(&p);
    CHECK_INT(p.len, 0);
    packlist_free(&p); /* twice is harmless */
    strlist_free(&l);
}

static void test_empty(void)
{
    struct strlist l = STRLIST_INIT;
    struct packlist p;
    CHECK_INT(packlist_from(&l, &p), 0);
    CHECK_INT(p.len, 0);
    CHECK(!packlist_contains(&p, "x"));
    CHECK_INT(packlist_lower_bound(&p, "x"), 0);
    CHECK_INT(packlist_bytes(&p), 0);
    packlist_free(&p);
}

int main(void)
{
    test_pack_and_search();
    test_empty();
    return unit_report();
}
