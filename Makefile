# ktlstun — one plain GNU Makefile.
#
#   make            build build/ktlstund and build/ktlstun
#   make check      install missing Debian packages, build (normal + ASan/UBSan), run every test
#   make demo       install missing Debian packages, build, run a server and client tunnel on loopback
#   make bench      benchmarks against real peers (not part of check)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

# Debian 12 packages: what building needs, and what the tests and the demo run.
BUILD_PACKAGES := gcc make pkg-config libssl-dev libiniparser-dev libcmocka-dev \
                  libsystemd-dev libpam0g-dev libkmod-dev libnl-3-dev
TEST_PACKAGES  := openssl curl stunnel4 socat procps iproute2 \
                  qemu-system-x86 busybox-static cpio kmod
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
override CPPFLAGS += -D_GNU_SOURCE -Idaemon -Ikmod-helpers
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARNINGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
override LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS   := -lssl -lcrypto -liniparser -lsystemd -lkmod -lpthread
TEST_LDLIBS := -lcmocka

SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

MAIN_SOURCES   := daemon/ktlstund.c daemon/ktlstun.c
MODULE_SOURCES := $(filter-out $(MAIN_SOURCES),$(wildcard daemon/*.c)) $(wildcard kmod-helpers/*.c)
MODULE_OBJECTS := $(MODULE_SOURCES:%.c=$(BUILD)/obj/%.o)
UNIT_SOURCES   := $(wildcard tests/unit/test_*.c)
UNIT_TESTS     := $(UNIT_SOURCES:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SOURCES   := $(wildcard tests/tools/*.c)
TOOLS          := $(TOOL_SOURCES:tests/tools/%.c=$(BUILD)/tools/%)
HEADERS        := $(wildcard daemon/*.h kmod-helpers/*.h tests/unit/*.h)

.PHONY: all deps check check-unit check-integration check-vm asan demo bench install clean

all: $(BUILD)/ktlstund $(BUILD)/ktlstun $(UNIT_TESTS) $(TOOLS)

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/ktlstund: $(BUILD)/obj/daemon/ktlstund.o $(MODULE_OBJECTS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ktlstun: $(BUILD)/obj/daemon/ktlstun.o $(MODULE_OBJECTS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(MODULE_OBJECTS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lssl -lcrypto -lpthread

# The sanitizer build lives beside the normal one and runs the same suites.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" all

deps:
	@missing=""; for p in $(BUILD_PACKAGES) $(TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

check: deps
	$(MAKE) all
	$(MAKE) asan
	tests/run-all.sh build build/asan

check-unit: all
	tests/unit/run.sh $(BUILD)

check-integration: all
	tests/integration/run.sh $(BUILD)

check-vm: all
	tests/vm/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	etc/demo.sh $(BUILD)

bench: deps
	$(MAKE) all
	bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/ktlstund $(DESTDIR)$(PREFIX)/sbin/ktlstund
	install -m 0755 $(BUILD)/ktlstun $(DESTDIR)$(PREFIX)/bin/ktlstun
	install -d $(DESTDIR)/etc/ktlstun
	install -m 0640 etc/ktlstun.ini $(DESTDIR)/etc/ktlstun/ktlstun.ini.example

clean:
	rm -rf build
