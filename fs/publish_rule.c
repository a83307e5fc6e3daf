/* The write state machine's decisions: see fs/publish_rule.h and docs/write.md. */
#include "fs/publish_rule.h"

enum publish_step publish_first_step(const struct publish_facts *f)
{
    if (f->published) return STEP_NONE;
    if (f->pending) return f->declaring ? STEP_FAIL_PENDING : STEP_NONE;
    if (!f->has_manifest && f->base_manifest && f->has_version)
        /* rewritten files of the published image (cp -rT, rsync -a of the same image after
         * its manifest.json published it) retire the stage at once; others wait for a
         * manifest.json until the writer declares the image done */
        return f->declaring || f->base_names ? STEP_KEEP_PUBLISHED : STEP_NONE;
    if (!f->has_manifest) return f->declaring ? STEP_FAIL_NO_MANIFEST : STEP_NONE;
    return STEP_CHECK_MANIFEST;
}

enum publish_after publish_after_check(bool blobs_missing, bool has_version, bool declaring)
{
    if (blobs_missing) return declaring ? AFTER_FAIL_MISSING : AFTER_WAIT;
    if (!has_version) return declaring ? AFTER_FAIL_NO_VERSION : AFTER_WAIT;
    return AFTER_PUBLISH;
}
