/*
 * The write state machine's decisions (docs/write.md "When an image is published"), as pure
 * functions of what a stage holds: no locks, no I/O, so every transition is in one place and
 * unit-tested (tests/unit/test_publish_rule.c). fs/stage_publish.c gathers the facts and
 * carries the decisions out.
 *
 *   OPEN --(complete, version and every blob there)--> PUBLISHED   (manifest PUT)
 *   OPEN --(unchanged files of the published image)--> PUBLISHED   (nothing sent)
 *   OPEN --(declared done while incomplete, or invalid)--> FAILED  (the writer gets EIO)
 *   FAILED --(declared done again: failed commits retried)--> OPEN or PUBLISHED
 * A stage is "declared done" by the operations after which a tool writes nothing more:
 * the tag directory's utimens (rsync -a, cp -a, tar) and the close or rename that completes it.
 */
#ifndef REGISTRYFS_PUBLISH_RULE_H
#define REGISTRYFS_PUBLISH_RULE_H

#include <stdbool.h>

/* What the stage holds when a publication is considered. */
struct publish_facts {
    bool published;     /* the stage is published already */
    bool pending;       /* a final-named file is still open, or not committed */
    bool has_manifest;  /* a staged, committed manifest.json */
    bool base_manifest; /* the published manifest.json is in place (neither hidden nor replaced) */
    bool base_names;    /* every staged file is one of the published image, same name */
    bool has_version;   /* a version file: staged, or the published one in place */
    bool declaring;     /* the writer declared the image done */
};

enum publish_step {
    STEP_NONE,             /* nothing to do now: published already, or wait for more files */
    STEP_FAIL_PENDING,     /* declared done while a file is open or uncommitted */
    STEP_FAIL_NO_MANIFEST, /* declared done without a manifest.json */
    STEP_KEEP_PUBLISHED,   /* the published image, unchanged: done without sending anything */
    STEP_CHECK_MANIFEST,   /* parse the manifest and look for its blobs, then publish_after_check */
};

enum publish_step publish_first_step(const struct publish_facts *f);

/* Once the manifest parsed and its blobs were looked for. */
enum publish_after {
    AFTER_WAIT,            /* a blob or the version is still to come */
    AFTER_FAIL_MISSING,    /* declared done with a blob missing */
    AFTER_FAIL_NO_VERSION, /* declared done without a version */
    AFTER_PUBLISH,         /* everything is there: PUT the manifest */
};

enum publish_after publish_after_check(bool blobs_missing, bool has_version, bool declaring);

#endif
