# registryfs build. `make` builds ./registryfs; `make check` runs unit + integration tests.
PREFIX ?= /usr/local
CC ?= cc
PKGS := fuse3 libcurl libcjson openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
VERSION := 0.1.0

OPT ?= -O2 -g
SAN ?=
override CFLAGS := $(OPT) $(SAN) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=314 \
	-DREGISTRYFS_VERSION=\"$(VERSION)\" -I. $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

COMMON_SRC := $(wildcard common/*.c)
TRANSPORT_SRC := $(wildcard transport/*.c)
CACHE_SRC := $(wildcard cache/*.c)
FS_SRC := $(wildcard fs/*.c)
LIB_SRC := $(COMMON_SRC) $(TRANSPORT_SRC) $(CACHE_SRC)
SRC := $(LIB_SRC) $(FS_SRC)

BUILD ?= build
OBJ := $(SRC:%.c=$(BUILD)/%.o)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all install check unit test asan bench format demo clean

all: registryfs

registryfs: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(LIB_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do $$t; done

install: registryfs
	install -D -m 0755 registryfs $(DESTDIR)$(PREFIX)/bin/registryfs

# Integration suite: real docker-registry, real clients (see tests/README.md).
test: registryfs unit
	/usr/bin/python3 -m pytest -q tests

check: test

# AddressSanitizer + UBSan build of the binary and unit tests, then the suite against it.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" registryfs-asan unit

registryfs-asan: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: registryfs
	/usr/bin/python3 tests/bench/bench.py

demo:
	./scripts/demo.sh

format:
	clang-format -i $(SRC) $(wildcard */*.h) $(UNIT_SRC) tests/unit/unit.h

clean:
	rm -rf build build-asan registryfs registryfs-asan
