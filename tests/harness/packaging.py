"""The packaging flow of docs/packaging.md ("The whole flow"), as the tests and the bench run it.

    run_flow("cp", src_mnt, pkg_mnt, image_list)     # or "rsync"

set -e, so a failing copy in the middle of the list fails the run.
"""

import os

from . import tools

_COPY = {
    "cp": 'cp -rT "$SRC/$image" "$PKG/$repo/$tag"',
    "rsync": 'rsync -a "$SRC/$image/" "$PKG/$repo/$tag/"',
}

_FLOW = r'''
set -e
while read -r image; do                       # image-list lines: repo/path:tag
  repo=${image%%:*}; tag=${image##*:}
  mkdir -p "$PKG/$repo"
  %s
done < "$LIST"
'''


def flow_script(tool):
    return _FLOW % _COPY[tool]


def run_flow(tool, src_mnt, pkg_mnt, image_list, **kw):
    env = dict(os.environ, SRC=str(src_mnt), PKG=str(pkg_mnt), LIST=str(image_list))
    return tools.run(["bash", "-c", flow_script(tool)], env=env, **kw)
