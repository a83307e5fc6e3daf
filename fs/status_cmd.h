/* The `registryfs status MOUNTPOINT` subcommand (docs/status.md). */
#ifndef REGISTRYFS_STATUS_CMD_H
#define REGISTRYFS_STATUS_CMD_H

/* argv[0] is "status". The process's exit status: 0, 1 (not a mount, daemon gone), 2 (usage). */
int status_main(int argc, char **argv);

#endif
