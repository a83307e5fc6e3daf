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
# fs/ without main(): unit tests of fs/ logic that needs no FUSE session link it too
FS_LIB_OBJ := $(filter-out $(BUILD)/fs/main.o,$(FS_SRC:%.c=$(BUILD)/%.o))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all install man check unit test asan bench format demo clean fuzz fuzz-build fuzz-smoke

all: registryfs

registryfs: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(LIB_OBJ) $(FS_LIB_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(FS_LIB_OBJ) $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do $$t; done

install: registryfs
	install -D -m 0755 registryfs $(DESTDIR)$(PREFIX)/bin/registryfs
	install -D -m 0644 docs/registryfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/registryfs.1

# The man page is hand-written roff: nothing to build, only checked. groff -ww warns about
# anything dubious but exits 0, so its stderr decides; man renders it as users will see it.
man: docs/registryfs.1
	@out=$$(groff -man -ww -z $< 2>&1) && [ -z "$$out" ] || { echo "$$out"; exit 1; }
	@out=$$(man --warnings -l -Tutf8 $< 2>&1 >/dev/null) && [ -z "$$out" ] || { echo "$$out"; exit 1; }

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
	clang-format -i $(SRC) $(wildcard */*.h) $(UNIT_SRC) tests/unit/unit.h $(FUZZ_SRC) tests/fuzz/fuzz.h

# libFuzzer targets (tests/fuzz/README.md): Debian's clang, the parsers of common/ and
# transport/ rebuilt with coverage + ASan/UBSan into build-fuzz/, each target then run for
# FUZZ_SECONDS on a scratch copy of its corpus. Any crash, leak or violated invariant fails.
FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -std=gnu11 -Wall -Wextra -Werror \
	-D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=314 -DREGISTRYFS_VERSION=\"$(VERSION)\" -I. \
	$(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(COMMON_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(TRANSPORT_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libfuzzparse.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libfuzzparse.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libfuzzparse.a \
		$(PKG_LIBS) -lpthread

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) ./tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# What CI runs: a few seconds per target, enough to keep them building and running.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=4

clean:
	rm -rf build build-asan build-fuzz registryfs registryfs-asan
