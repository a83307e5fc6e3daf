#include "common/size.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>

int parse_size(const char *text, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)*text)) return -EINVAL;
    uint64_t v = 0;
    const char *p = text;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10) return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    static const char units[] = "KMGT";
    int shift = 0;
    for (int i = 0; units[i]; i++)
        if (toupper((unsigned char)*p) == units[i]) shift = 10 * (i + 1);
    if (shift) p++;
    if (strcasecmp(p, "") != 0 && strcasecmp(p, "b") != 0 && !(shift && strcasecmp(p, "ib") == 0))
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift)) return -EINVAL;
    *out = v << shift;
    return 0;
}
