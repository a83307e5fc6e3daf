/*
 * Blobs a storage tree already has at hand: when a blob file is created in a stage of a
 * storage-tree mount and a verified copy of that blob is available — in the tree itself, or
 * hardlinked in at that moment from a -o link_from tree or the cache (cache/link_roots.c) — the
 * writer's bytes are compared with that copy instead of being spilled to disk and hashed.
 * Bytes equal to a verified blob are that blob, so the commit needs no hash and stores
 * nothing: the copy is already the tree's. This is what makes `cp -r` of images from a
 * mounted big tree into a new tree cost only links.
 *
 * Anything else (different bytes, writes out of order, a truncation to a size other than
 * 0, a rename onto another blob's name) *materialises* the file: the bytes accepted so far are
 * copied from the known copy into the spill file and hashed, and the file goes on as any
 * other. Called with f->io held where noted.
 */
#include "fs/stage.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "fs/host.h"

#define CMP_CHUNK (64u << 10)

void stage_known_open(struct stage *s, struct staged_file *f, const char *hex)
{
    int fd;
    uint64_t size;
    if (!s->host->local_root || blobcache_open_verified(s->host->blobs, hex, &fd, &size)) return;
    pthread_mutex_lock(&f->io);
    f->known_size = size;
    memcpy(f->known_hex, hex, SHA256_HEX_LEN + 1);
    __atomic_store_n(&f->known_fd, fd, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->io);
}

bool stage_known_active(const struct staged_file *f)
{
    return __atomic_load_n(&f->known_fd, __ATOMIC_ACQUIRE) >= 0;
}

void stage_known_close(struct staged_file *f)
{
    int fd = __atomic_exchange_n(&f->known_fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0) close(fd);
}

/* Whether bytes [off, off+len) of the known copy are buf. */
static bool same_bytes(int fd, const char *buf, size_t len, uint64_t off)
{
    char chunk[CMP_CHUNK];
    for (size_t done = 0; done < len;) {
        size_t want = len - done < CMP_CHUNK ? len - done : CMP_CHUNK;
        ssize_t n = pread(fd, chunk, want, (off_t)(off + done));
        if (n <= 0 || memcmp(chunk, buf + done, (size_t)n) != 0) return false;
        done += (size_t)n;
    }
    return true;
}

/* f->io held. Copies the accepted prefix into the spill file, hashing it, and leaves the
 * known mode. */
int stage_known_drop_locked(struct staged_file *f)
{
    if (f->known_fd < 0) return 0;
    char chunk[CMP_CHUNK];
    int rc = 0;
    for (uint64_t off = 0; off < f->hashed && rc == 0;) {
        uint64_t left = f->hashed - off;
        ssize_t n =
            pread(f->known_fd, chunk, left < CMP_CHUNK ? (size_t)left : CMP_CHUNK, (off_t)off);
        if (n <= 0 || pwrite(f->fd, chunk, (size_t)n, (off_t)off) != n) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        sha256_update(&f->hash, chunk, (size_t)n);
        off += (uint64_t)n;
    }
    stage_known_close(f);
    if (rc) f->hash_broken = true; /* the spill is incomplete: the commit fails its hash */
    return rc;
}

int stage_known_write_locked(struct staged_file *f, const char *buf, size_t len, uint64_t off)
{
    if (f->known_fd < 0) return 0;
    if (off != f->hashed || off + len > f->known_size || !same_bytes(f->known_fd, buf, len, off)) {
        int rc = stage_known_drop_locked(f);
        return rc < 0 ? rc : 0;
    }
    f->hashed += len;
    if (off + len > f->size) f->size = off + len;
    f->dirty = true;
    f->committed = false;
    return 1;
}

ssize_t stage_known_read_locked(struct staged_file *f, char *buf, size_t len, uint64_t off)
{
    if (off >= f->size) return 0;
    if (len > f->size - off) len = (size_t)(f->size - off);
    ssize_t n = pread(f->known_fd, buf, len, (off_t)off);
    return n < 0 ? -errno : n;
}

int stage_known_verdict(struct staged_file *f)
{
    pthread_mutex_lock(&f->io);
    int rc = 0;
    if (f->known_fd >= 0 && strcmp(f->known_hex, f->hex) == 0 && f->hashed == f->size &&
        f->size == f->known_size)
        rc = 1;
    else if (f->known_fd >= 0)
        rc = stage_known_drop_locked(f);
    pthread_mutex_unlock(&f->io);
    return rc;
}
