/* fs/publish_rule.c: the write state machine's decisions (docs/write.md), and the names a
 * dir: image holds (fs/stage.c stage_role_of, stage_temp_blob_hex). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fs/publish_rule.h"
#include "fs/stage.h"
#include "tests/unit/unit.h"

static struct publish_facts facts(bool declaring)
{
    struct publish_facts f = {.declaring = declaring};
    return f;
}

static void test_first_step(void)
{
    struct publish_facts f = facts(true);
    f.published = true;
    f.pending = true;
    CHECK_INT(publish_first_step(&f), STEP_NONE); /* published: nothing more */
    for (int declaring = 0; declaring <= 1; declaring++) {
        f = facts(declaring);
        f.pending = true;
        f.has_manifest = true;
        CHECK_INT(publish_first_step(&f), declaring ? STEP_FAIL_PENDING : STEP_NONE);
        f = facts(declaring);
        CHECK_INT(publish_first_step(&f), declaring ? STEP_FAIL_NO_MANIFEST : STEP_NONE);
        f.has_manifest = true;
        CHECK_INT(publish_first_step(&f), STEP_CHECK_MANIFEST);
    }
}

/* rsync -a / cp -rT of the same image over a published tag */
static void test_unchanged_published_image(void)
{
    struct publish_facts f = facts(false);
    f.base_manifest = f.has_version = true;
    CHECK_INT(publish_first_step(&f), STEP_NONE); /* new blobs may await a new manifest */
    f.base_names = true;
    CHECK_INT(publish_first_step(&f), STEP_KEEP_PUBLISHED);
    f = facts(true);
    f.base_manifest = f.has_version = true;
    CHECK_INT(publish_first_step(&f), STEP_KEEP_PUBLISHED);
    f.has_version = false; /* version hidden (skopeo unlinked it): not the published image */
    CHECK_INT(publish_first_step(&f), STEP_FAIL_NO_MANIFEST);
    f = facts(true);
    f.has_manifest = f.base_manifest = f.has_version = f.base_names = true;
    CHECK_INT(publish_first_step(&f), STEP_CHECK_MANIFEST); /* a new manifest.json wins */
}

static void test_after_check(void)
{
    CHECK_INT(publish_after_check(true, true, false), AFTER_WAIT);
    CHECK_INT(publish_after_check(true, true, true), AFTER_FAIL_MISSING);
    CHECK_INT(publish_after_check(false, false, false), AFTER_WAIT);
    CHECK_INT(publish_after_check(false, false, true), AFTER_FAIL_NO_VERSION);
    CHECK_INT(publish_after_check(false, true, false), AFTER_PUBLISH);
    CHECK_INT(publish_after_check(false, true, true), AFTER_PUBLISH);
}

static void test_names(void)
{
    enum staged_role role;
    char hex[SHA256_HEX_LEN + 1];
    const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK_INT(stage_role_of("version", &role, hex), 0);
    CHECK_INT(role, ROLE_VERSION);
    CHECK_INT(stage_role_of("manifest.json", &role, hex), 0);
    CHECK_INT(role, ROLE_MANIFEST);
    CHECK_INT(stage_role_of(h, &role, hex), 0);
    CHECK_INT(role, ROLE_BLOB);
    CHECK_STR(hex, h);
    char inst[128];
    snprintf(inst, sizeof(inst), "%s.manifest.json", h);
    CHECK_INT(stage_role_of(inst, &role, hex), 0);
    CHECK_INT(role, ROLE_INSTANCE);
    CHECK_STR(hex, h);
    CHECK_INT(stage_role_of(".manifest.json.Ab12Cd", &role, hex), 0); /* rsync */
    CHECK_INT(role, ROLE_TEMP);
    CHECK_INT(stage_role_of("dir-put-blob123", &role, hex), 0); /* skopeo */
    CHECK_INT(role, ROLE_TEMP);
    CHECK_INT(stage_role_of("notes.txt", &role, hex), -EINVAL);
    CHECK_INT(stage_role_of("0123", &role, hex), -EINVAL);
    CHECK_INT(stage_role_of("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                            &role, hex),
              -EINVAL); /* upper case is not a digest */
    char tmp[128];
    snprintf(tmp, sizeof(tmp), ".%s.x1Y2z3", h);
    CHECK(stage_temp_blob_hex(tmp, hex));
    CHECK_STR(hex, h);
    CHECK(!stage_temp_blob_hex(".manifest.json.x1Y2z3", hex));
    CHECK(!stage_temp_blob_hex(h, hex));
}

int main(void)
{
    test_first_step();
    test_unchanged_published_image();
    test_after_check();
    test_names();
    return unit_report();
}
