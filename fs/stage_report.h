/* At unmount, the images written but not published: one log line each (docs/write.md). */
#ifndef REGISTRYFS_STAGE_REPORT_H
#define REGISTRYFS_STAGE_REPORT_H

#include "fs/rfs.h"

void stage_report_unpublished(struct rfs *fs);

#endif
