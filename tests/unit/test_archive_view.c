/* fs/archive_view.c: which names are archive views, and the manifest.json it writes. */
#include <stdlib.h>
#include <string.h>

#include "fs/archive_view.h"
#include "tests/unit/unit.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_names(void)
{
    char tag[129];
    CHECK(archive_view_name("v1.tar", tag, sizeof(tag)));
    CHECK_STR(tag, "v1");
    CHECK(archive_view_name("1.17.6.tar", tag, sizeof(tag)));
    CHECK_STR(tag, "1.17.6");
    CHECK(archive_view_name("v1.tar.tar", tag, sizeof(tag)));
    CHECK_STR(tag, "v1.tar");
    CHECK(!archive_view_name(".tar", tag, sizeof(tag)));
    CHECK(!archive_view_name("v1", tag, sizeof(tag)));
    CHECK(!archive_view_name("v1.TAR", tag, sizeof(tag)));
    CHECK(!archive_view_name("-x.tar", tag, sizeof(tag))); /* no valid tag */
    CHECK(!archive_view_name("v1.tar", tag, 2));           /* does not fit */
}

static void test_manifest_json(void)
{
    const char *layers[] = {HEX_B, HEX_A, HEX_B};
    char *json = archive_manifest_json(HEX_A, layers, 3, "reg:5000/ns/app:v1");
    CHECK_STR(json, "[{\"Config\":\"" HEX_A ".json\",\"RepoTags\":[\"reg:5000/ns/app:v1\"],"
                    "\"Layers\":[\"" HEX_B ".tar\",\"" HEX_A ".tar\",\"" HEX_B ".tar\"]}]");
    free(json);
    json = archive_manifest_json(HEX_A, NULL, 0, "");
    CHECK_STR(json, "[{\"Config\":\"" HEX_A ".json\",\"RepoTags\":[],\"Layers\":[]}]");
    free(json);
}

int main(void)
{
    test_names();
    test_manifest_json();
    return unit_report();
}
