# ktlstun — one plain GNU Makefile.
#
#   make            build build/ktlstund and build/ktlstun
#   make check      install missing Debian packages, build (normal + ASan/UBSan), run every test
#   make demo       install missing Debian packages, build, run a server and client tunnel on loopback
#   make bench      benchmarks against real peers (not part of check)
#   make bench-network  only the network tunnels against OpenVPN (root: namespaces)
#   make bench-fleet    only the PostgreSQL state store against the file store (root: a local user)
#   make install    PREFIX=/usr/local DESTDIR= (make uninstall removes it again)

PREFIX  ?= /usr/local
DESTDIR ?=
# Where `make install` puts things (README, "Installed files"). Configuration stays in
# /etc whatever PREFIX is: ktlstund reads /etc/ktlstun/ktlstun.ini by default.
SYSCONFDIR     ?= /etc
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
UNITDIR        ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
MODULESLOADDIR ?= $(PREFIX)/lib/modules-load.d
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/ktlstun
BUILD   ?= build
CC      ?= cc

# Debian 12 packages: what building needs, and what the tests and the demo run.
BUILD_PACKAGES := gcc make pkg-config libssl-dev libiniparser-dev libcmocka-dev \
                  libsystemd-dev libpam0g-dev libkmod-dev libnl-3-dev libnl-route-3-dev libpq-dev
TEST_PACKAGES  := cppcheck clang-tidy openssl curl stunnel4 socat procps iproute2 jq systemd util-linux \
                  nginx-light haproxy tinyproxy python3 postgresql \
                  chromium chromium-driver libnss3-tools \
                  softhsm2 libengine-pkcs11-openssl opensc swtpm swtpm-tools tpm2-openssl tpm2-tools \
                  groff-base man-db strace libpam-oath oathtool fail2ban \
                  qemu-system-x86 busybox-static cpio kmod
# make bench only: the peers it measures against, its load tool, charts, report.
BENCH_PACKAGES := haproxy openvpn iperf3 iputils-ping gnuplot-nox python3 linux-perf
# make fuzz only: libFuzzer comes with clang (make check replays the corpora without it).
FUZZ_PACKAGES  := clang
FUZZ_CC        ?= clang
FUZZ_SECONDS   ?= 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
# libnl-route-3 (rtnetlink) configures the network tunnels' devices (daemon/netdev/).
NL_CFLAGS := $(shell pkg-config --cflags libnl-route-3.0 2>/dev/null || echo -I/usr/include/libnl3)
NL_LIBS   := $(shell pkg-config --libs libnl-route-3.0 2>/dev/null || echo -lnl-route-3 -lnl-3)
# libpq (PostgreSQL's client library) reaches the shared state store (daemon/store/).
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
override CPPFLAGS += -D_GNU_SOURCE -Idaemon -Ikmod-helpers $(NL_CFLAGS) $(PQ_CFLAGS)
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARNINGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
override LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS   := -lssl -lcrypto -liniparser -lsystemd -lkmod -lpam -lpthread $(NL_LIBS) -lpq
CLI_LDLIBS := -lssl -lcrypto -liniparser -lsystemd -lkmod -lpq
TEST_LDLIBS := -lcmocka

SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# One object list per binary, by subsystem folder (ARCHITECTURE.md): the linker then
# refuses any call across a line the layout does not allow. The CLI carries no relay,
# worker, supervisor or PAM helper code (tests/integration/test_layout.sh checks `nm`).
objects_in = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard $(addsuffix /*.c,$(1))))
CORE_OBJECTS       := $(call objects_in,daemon/core kmod-helpers)
PROTO_OBJECTS      := $(call objects_in,daemon/proto)
CONFIG_OBJECTS     := $(call objects_in,daemon/config)
CHECK_OBJECTS      := $(call objects_in,daemon/check)
TLS_OBJECTS        := $(call objects_in,daemon/tls daemon/ktls)
RELAY_OBJECTS      := $(call objects_in,daemon/relay)
PACKET_OBJECTS     := $(call objects_in,daemon/packet)
IPRELAY_OBJECTS    := $(call objects_in,daemon/iprelay)
NETDEV_OBJECTS     := $(call objects_in,daemon/netdev)
ADDRPLAN_OBJECTS   := $(call objects_in,daemon/addrplan)
AUTH_OBJECTS       := $(call objects_in,daemon/auth)
WORKER_OBJECTS     := $(call objects_in,daemon/worker)
HELPER_OBJECTS     := $(call objects_in,daemon/helper)
STORE_OBJECTS      := $(call objects_in,daemon/store)
SUPERVISOR_OBJECTS := $(filter-out %/ktlstund.o,$(call objects_in,daemon/supervisor))
CLI_OBJECTS        := $(filter-out %/ktlstun.o,$(call objects_in,daemon/cli))

DAEMON_OBJECTS := $(SUPERVISOR_OBJECTS) $(HELPER_OBJECTS) $(STORE_OBJECTS) $(WORKER_OBJECTS) $(AUTH_OBJECTS) \
                  $(RELAY_OBJECTS) $(IPRELAY_OBJECTS) $(PACKET_OBJECTS) $(NETDEV_OBJECTS) \
                  $(ADDRPLAN_OBJECTS) \
                  $(CHECK_OBJECTS) $(TLS_OBJECTS) $(CONFIG_OBJECTS) $(PROTO_OBJECTS) \
                  $(CORE_OBJECTS)
# `ktlstun unlock` edits the lock state file itself while the daemon is stopped.
CLI_LINK_OBJECTS := $(CLI_OBJECTS) $(BUILD)/obj/daemon/helper/lock_policy.o \
                    $(BUILD)/obj/daemon/helper/lock_state.o $(CHECK_OBJECTS) $(ADDRPLAN_OBJECTS) \
                    $(BUILD)/obj/daemon/store/store_schema.o $(BUILD)/obj/daemon/store/store_connect.o \
                    $(BUILD)/obj/daemon/store/store_events.o \
                    $(TLS_OBJECTS) \
                    $(CONFIG_OBJECTS) $(BUILD)/obj/daemon/proto/auth_protocol.o \
                    $(BUILD)/obj/daemon/proto/status_record.o \
                    $(BUILD)/obj/daemon/proto/status_socket.o \
                    $(BUILD)/obj/daemon/proto/http_connect.o $(CORE_OBJECTS)
# Unit tests reach any module; the layering is the binaries' business.
TEST_OBJECTS   := $(DAEMON_OBJECTS) $(CLI_OBJECTS)

# tests/unit/test_fuzz_corpus.c is built once per fuzz target (see "libFuzzer targets").
FUZZ_TARGETS   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
UNIT_SOURCES   := $(filter-out tests/unit/test_fuzz_corpus.c,$(wildcard tests/unit/test_*.c))
UNIT_TESTS     := $(UNIT_SOURCES:tests/unit/%.c=$(BUILD)/tests/%) \
                  $(FUZZ_TARGETS:%=$(BUILD)/tests/test_fuzz_%)
TOOL_SOURCES   := $(wildcard tests/tools/*.c)
TOOLS          := $(TOOL_SOURCES:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_TOOL_SOURCES := $(wildcard bench/tools/*.c)
BENCH_TOOLS    := $(BENCH_TOOL_SOURCES:bench/tools/%.c=$(BUILD)/bench/%)

# V=1 prints every command in full.
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-6s %s\n' $(1) $(2);)

# Keep object files between runs (they are intermediates of pattern rules).
.SECONDARY:

.PHONY: all deps check check-unit check-integration check-vm asan lint demo bench bench-network bench-fleet bench-vm fuzz install uninstall clean

all: $(BUILD)/ktlstund $(BUILD)/ktlstun $(UNIT_TESTS) $(TOOLS) $(BENCH_TOOLS) \
     $(BUILD)/tests/ktlstund-tiny-records $(BUILD)/tools/clock_shift.so

# -MMD -MP: each object's header dependencies, read back on the next run.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(BUILD)/ktlstund: $(BUILD)/obj/daemon/supervisor/ktlstund.o $(DAEMON_OBJECTS)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Test build for the kTLS guest tests (tests/vm/README.md): ktlstund whose AES record
# limit is TINY_RECORD_LIMIT records, so it rekeys many times inside one transfer.
# Never installed; only ktls_rekey.c differs.
TINY_RECORD_LIMIT := 16
$(BUILD)/obj/tiny-records/ktls_rekey.o: daemon/ktls/ktls_rekey.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -DKTLSTUN_TEST_RECORD_LIMIT=$(TINY_RECORD_LIMIT) \
	  -MMD -MP -c -o $@ $<

$(BUILD)/tests/ktlstund-tiny-records: $(BUILD)/obj/daemon/supervisor/ktlstund.o \
    $(filter-out %/ktls/ktls_rekey.o,$(DAEMON_OBJECTS)) $(BUILD)/obj/tiny-records/ktls_rekey.o
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ktlstun: $(BUILD)/obj/daemon/cli/ktlstun.o $(CLI_LINK_OBJECTS)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CLI_LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_OBJECTS)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

# The corpus replay of fuzz target NAME: the target's source inside the replay's.
$(BUILD)/obj/tests/fuzz/replay_%.o: tests/unit/test_fuzz_corpus.c tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -DFUZZ_NAME='"$*"' \
	  -DFUZZ_SOURCE='"../fuzz/fuzz_$*.c"' -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_fuzz_%: $(BUILD)/obj/tests/fuzz/replay_%.o $(TEST_OBJECTS)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lssl -lcrypto -lpthread

# clock_shift.so, preloaded into the daemon by tests that let its clock run ahead
# (tests/tools/preload/clock_shift.c). Never with the sanitizers, in either build: a
# preloaded library must not need a runtime that has to come first.
$(BUILD)/tools/clock_shift.so: tests/tools/preload/clock_shift.c
	@mkdir -p $(dir $@)
	$(call say,CC,$@)$(CC) -O2 -std=gnu11 $(WARNINGS) -fPIC -shared -o $@ $<

# netdev_tool drives daemon/netdev/ (and daemon/iprelay/ between two devices, over
# userspace TLS or kTLS) for tests/integration/test_netdev.sh and tests/vm/guest/ktls_packets.sh.
KTLS_OBJECTS := $(call objects_in,daemon/ktls)
$(BUILD)/tools/netdev_tool: $(BUILD)/obj/tests/tools/netdev_tool.o $(NETDEV_OBJECTS) $(IPRELAY_OBJECTS) \
                            $(PACKET_OBJECTS) $(KTLS_OBJECTS) $(PROTO_OBJECTS) $(CORE_OBJECTS)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# tun_service_tool drives supervisor/tun_service.c with workers on worker/tun_link.c
# for tests/integration/test_tun_service.sh.
$(BUILD)/tools/tun_service_tool: $(BUILD)/obj/tests/tools/tun_service_tool.o $(DAEMON_OBJECTS)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# store_lease_tool drives store/store_leases.c against a real PostgreSQL for
# tests/integration/test_store_leases.sh.
$(BUILD)/tools/store_lease_tool: $(BUILD)/obj/tests/tools/store_lease_tool.o \
                                 $(BUILD)/obj/daemon/store/store_leases.o \
                                 $(BUILD)/obj/daemon/store/store_schema.o \
                                 $(BUILD)/obj/daemon/store/store_connect.o $(CORE_OBJECTS)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/tools/%.o
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lssl -lcrypto

# The sanitizer build lives beside the normal one and runs the same suites.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="$(SAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" all

deps:
	@missing=""; for p in $(BUILD_PACKAGES) $(TEST_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Both builds use every core (the dependency lists from -MMD keep that safe).
JOBS ?= $(shell nproc)
check: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) -j$(JOBS) asan
	tests/run-all.sh build build/asan

# Static analysis, clean or failing: cppcheck, and clang-tidy with the checks in
# .clang-tidy. tests/run-all.sh runs it as a suite of make check.
LINT_SOURCES := $(wildcard daemon/*/*.c kmod-helpers/*.c)
lint:
	tests/lint.sh $(LINT_SOURCES)

check-unit: all
	tests/unit/run.sh $(BUILD)

check-integration: all
	tests/integration/run.sh $(BUILD)

check-vm: all
	tests/vm/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	etc/demo.sh $(BUILD)

bench: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench: deps
	$(MAKE) all
	bench/run.sh $(BUILD)
	$(SUDO) bench/network.sh $(BUILD)
	$(SUDO) bench/fleet.sh $(BUILD)
	bench/vm/run.sh $(BUILD)

# The network tunnels against OpenVPN alone (about 2 minutes, in namespaces it removes).
bench-network: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench-network: deps
	$(MAKE) all
	$(SUDO) bench/network.sh $(BUILD)

# Logins and gated handshakes with the PostgreSQL state store against the file store
# (about 2 minutes; a PostgreSQL server and a local user of its own, removed at exit).
bench-fleet: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench-fleet: deps
	$(MAKE) all
	$(SUDO) bench/fleet.sh $(BUILD)

# The kTLS counts alone (CPU, syscalls and bytes through userspace per GB, inside the VM).
bench-vm: deps
	$(MAKE) all
	bench/vm/run.sh $(BUILD)

# libFuzzer targets for every parser of untrusted or on-disk input: tests/fuzz/fuzz_NAME.c,
# corpus in tests/fuzz/corpus/NAME, dictionary in tests/fuzz/NAME.dict when there is one.
# `make fuzz` builds them and runs each for FUZZ_SECONDS (FUZZ_RUN="NAME ..." picks
# some); new inputs go to $(BUILD)/fuzz/corpus-NAME, never into tests/fuzz/corpus:
#   $(BUILD)/fuzz/fuzz_NAME -merge=1 tests/fuzz/corpus/NAME $(BUILD)/fuzz/corpus-NAME
# keeps those that add coverage (add -use_counters=0 for the targets that read a file,
# whose runs are slow, so their replay stays short). make check replays every corpus
# through the same targets without clang: $(BUILD)/tests/test_fuzz_NAME.
FUZZ_RUN     ?= $(FUZZ_TARGETS)
FUZZ_MAX_LEN ?= 4096
FUZZ_FLAGS   := -Wall -Wextra -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# What each target links besides itself: its parser and what that calls.
fuzz_sources_auth_frame     := daemon/proto/auth_protocol.c
fuzz_sources_helper_msg     := daemon/proto/helper_msg.c
fuzz_sources_status_record  := daemon/proto/status_record.c daemon/core/text.c
fuzz_sources_keylog         := daemon/ktls/ktls_keys.c daemon/core/log.c daemon/core/text.c
fuzz_sources_post_handshake := daemon/ktls/post_handshake.c
fuzz_sources_lock_state     := daemon/helper/lock_state.c daemon/helper/lock_policy.c
fuzz_sources_user_map       := daemon/config/user_map.c daemon/core/identity.c \
                               daemon/core/string_list.c daemon/core/text.c daemon/core/log.c
fuzz_sources_ini_source     := daemon/config/ini_source.c
fuzz_sources_tunnel_frame   := daemon/proto/tunnel_frame.c daemon/core/ip_prefix.c
fuzz_sources_ip_packet      := daemon/packet/ip_packet.c daemon/packet/mss_clamp.c daemon/core/ip_prefix.c
fuzz_sources_tun_request    := daemon/proto/tun_request.c daemon/proto/tunnel_frame.c daemon/core/ip_prefix.c
fuzz_sources_http_connect   := daemon/proto/http_connect.c
fuzz_sources_http_request   := daemon/auth/http_request.c daemon/core/text.c

.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(fuzz_sources_$$*) $(wildcard daemon/*/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ $< \
	  $(fuzz_sources_$*) $(LDLIBS)

fuzz: EXTRA_PACKAGES = $(FUZZ_PACKAGES)
fuzz: deps $(FUZZ_RUN:%=$(BUILD)/fuzz/fuzz_%)
	@set -e; for name in $(FUZZ_RUN); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$name; \
	  dict=; [ ! -f tests/fuzz/$$name.dict ] || dict=-dict=tests/fuzz/$$name.dict; \
	  echo "fuzz_$$name: $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
	    $$dict $(BUILD)/fuzz/corpus-$$name tests/fuzz/corpus/$$name; \
	done

# Installs exactly the files README lists (tests/integration/test_install.sh checks
# them). Builds nothing it does not install: only the two binaries, and only when
# they are missing or stale in $(BUILD). Never touches /etc/ktlstun/ktlstun.ini, and
# keeps a PAM file that was edited locally. Straight onto this machine (no DESTDIR,
# as root) it also creates the ktlstun user and its directories.
INSTALL_PAM      := $(wildcard pam/ktlstun)
INSTALL_FAIL2BAN := $(wildcard etc/fail2ban/filter.d/ktlstun.conf)
INSTALL_EXAMPLES := $(wildcard etc/examples/*.ini)

install: $(BUILD)/ktlstund $(BUILD)/ktlstun
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(MODULESLOADDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(DOCDIR)/examples/systemd
	install -m 0755 $(BUILD)/ktlstund $(DESTDIR)$(SBINDIR)/ktlstund
	install -m 0755 $(BUILD)/ktlstun $(DESTDIR)$(BINDIR)/ktlstun
	sed 's|/usr/sbin/ktlstund|$(SBINDIR)/ktlstund|g' units/ktlstund.service \
	  >$(DESTDIR)$(UNITDIR)/ktlstund.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ktlstund.service
	install -m 0644 units/ktlstund.socket $(DESTDIR)$(UNITDIR)/ktlstund.socket
	install -m 0644 units/sysusers.d/ktlstun.conf $(DESTDIR)$(SYSUSERSDIR)/ktlstun.conf
	install -m 0644 units/tmpfiles.d/ktlstun.conf $(DESTDIR)$(TMPFILESDIR)/ktlstun.conf
	install -m 0644 kmod-helpers/modules-load.d/ktlstun.conf $(DESTDIR)$(MODULESLOADDIR)/ktlstun.conf
	install -m 0644 units/man/ktlstun.1 $(DESTDIR)$(MANDIR)/man1/ktlstun.1
	install -m 0644 units/man/ktlstun.ini.5 $(DESTDIR)$(MANDIR)/man5/ktlstun.ini.5
	install -m 0644 units/man/ktlstund.8 $(DESTDIR)$(MANDIR)/man8/ktlstund.8
	install -m 0644 units/examples/ktlstund-ssh.socket units/examples/sockets.conf \
	  units/examples/network.conf $(DESTDIR)$(DOCDIR)/examples/systemd/
	$(if $(INSTALL_EXAMPLES),install -m 0644 $(INSTALL_EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/)
	@# 0750 and group ktlstun once tmpfiles.d/ktlstun.conf has run; an existing
	@# directory keeps its owner and mode.
	[ -d $(DESTDIR)$(SYSCONFDIR)/ktlstun ] || install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/ktlstun
	install -m 0644 etc/ktlstun.ini $(DESTDIR)$(SYSCONFDIR)/ktlstun/ktlstun.ini.example
	@set -e; if [ -n "$(INSTALL_PAM)" ]; then \
	  dest=$(DESTDIR)$(SYSCONFDIR)/pam.d/ktlstun; \
	  if [ -e "$$dest" ] && ! cmp -s $(INSTALL_PAM) "$$dest"; then \
	    echo "kept $$dest: it differs from $(INSTALL_PAM) (edited here?); compare them"; \
	  else \
	    echo "install -D -m 0644 $(INSTALL_PAM) $$dest"; \
	    install -D -m 0644 $(INSTALL_PAM) "$$dest"; \
	  fi; \
	fi
	$(if $(INSTALL_FAIL2BAN),install -D -m 0644 $(INSTALL_FAIL2BAN) $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/ktlstun.conf)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  echo "systemd-sysusers $(SYSUSERSDIR)/ktlstun.conf"; \
	  systemd-sysusers $(SYSUSERSDIR)/ktlstun.conf && \
	  echo "systemd-tmpfiles --create $(TMPFILESDIR)/ktlstun.conf" && \
	  systemd-tmpfiles --create $(TMPFILESDIR)/ktlstun.conf; \
	fi

# Removes what install put there; keeps /etc/ktlstun (config, keys, OTP secrets),
# the PAM file if it was edited, and the ktlstun user.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ktlstund $(DESTDIR)$(BINDIR)/ktlstun \
	  $(DESTDIR)$(UNITDIR)/ktlstund.service $(DESTDIR)$(UNITDIR)/ktlstund.socket \
	  $(DESTDIR)$(SYSUSERSDIR)/ktlstun.conf $(DESTDIR)$(TMPFILESDIR)/ktlstun.conf \
	  $(DESTDIR)$(MODULESLOADDIR)/ktlstun.conf \
	  $(DESTDIR)$(MANDIR)/man1/ktlstun.1 $(DESTDIR)$(MANDIR)/man5/ktlstun.ini.5 \
	  $(DESTDIR)$(MANDIR)/man8/ktlstund.8 \
	  $(DESTDIR)$(SYSCONFDIR)/ktlstun/ktlstun.ini.example \
	  $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/ktlstun.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -n "$(INSTALL_PAM)" ] && cmp -s $(INSTALL_PAM) $(DESTDIR)$(SYSCONFDIR)/pam.d/ktlstun; then \
	  echo "rm -f $(DESTDIR)$(SYSCONFDIR)/pam.d/ktlstun"; \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/pam.d/ktlstun; \
	fi

clean:
	rm -rf build
