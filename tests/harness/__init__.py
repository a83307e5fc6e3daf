"""Integration-test harness for registryfs.

Modules:
  registry  -- run Debian's docker-registry (distribution 2.8) on a loopback port
  auth      -- htpasswd files and a tiny JWT token server for token-auth registries
  imagegen  -- deterministic image generator (layers, configs, manifests, indexes)
  regclient -- minimal registry HTTP client (push / pull / catalog / delete)
  samples   -- the standard sample set pushed once per test session
  mount     -- run ./registryfs and always unmount
  proxy     -- a threaded HTTP proxy that can corrupt blobs or force pagination
  tools     -- subprocess helpers for real clients (skopeo, rsync, ls, stat, ...)

Only the Python standard library plus Debian's python3-cryptography and python3-jwt are
used (the latter two only by the token server).
"""
