# sockd-session: per-connection SOCKS server.  Plain GNU make.
#
#   make            build sockd-session/sockd-session and sockd-check/sockd-check
#   make run        install build deps, build, serve SOCKS on 127.0.0.1:$(PORT)
#   make check      install test deps, build, run every test (prove)
#   make asan       the same suite against an ASan+UBSan build (in build-asan/)
#   make install    DESTDIR, PREFIX, SBINDIR, SYSCONFDIR, UNITDIR, MANDIR honoured
#
# O is the output directory; the default build lives beside the sources, as
# the README promises, and `make asan` uses O=build-asan so the two coexist.

O        ?= .
PORT     ?= 1080
PREFIX   ?= /usr/local
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR  ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
PAMDIR   ?= $(SYSCONFDIR)/pam.d
VERSION  := 0.1.0

CC       ?= cc
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Werror
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE \
            -fstack-clash-protection -fcf-protection
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) \
             -Irules -Isockd-session -DSOCKD_VERSION='"$(VERSION)"' \
             -DSOCKD_SYSCONFDIR='"$(SYSCONFDIR)"' \
             -DSOCKD_RULES_HASH='"$(RULES_HASH)"'
LDFLAGS_HARDEN := -pie -Wl,-z,relro,-z,now -Wl,--as-needed

ifeq ($(SANITIZE),1)
HARDEN   := -fPIE
CFLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined
# ASan intercepts crypt_r; its pointer to the real one is only set when
# libcrypt is loaded at start, and pam_unix (dlopened) would call through
# a NULL.  Sanitizer builds therefore link libcrypt; release builds load
# it on first use.
LDFLAGS_HARDEN := -pie -fsanitize=address,undefined -Wl,--no-as-needed -lcrypt
endif

# A compiled rules image names the build of the rules engine that wrote it
# (rules/conf_image.c): a hash of its sources, so that an image is never
# read by a parser that changed, even within one version.
RULES_HASH := $(shell cat rules/*.c rules/*.h 2>/dev/null | sha256sum | cut -c1-16)

# The rules engine: one archive that both programs link (never two copies).
RULES_SRC := rules/conf_lex.c rules/conf_parse.c rules/conf_dump.c \
             rules/conf_image.c rules/conf_index.c rules/conf_lazy.c \
             rules/addr.c rules/rules_match.c rules/names.c rules/resolve.c \
             rules/methods.c
SESSION_SRC := sockd-session/main.c sockd-session/activation.c \
               sockd-session/socks_proto.c sockd-session/negotiate.c \
               sockd-session/netio.c sockd-session/privdrop.c \
               sockd-session/connect.c sockd-session/relay.c \
               sockd-session/log.c sockd-session/auth_pam.c \
               sockd-session/auth_passwd.c sockd-session/gss.c \
               sockd-session/session.c sockd-session/cmd_connect.c \
               sockd-session/cmd_bind.c sockd-session/cmd_udp.c \
               sockd-session/sandbox.c sockd-session/journal.c
CHECK_SRC := sockd-check/main.c sockd-check/spec.c sockd-check/decide.c \
             sockd-check/lint.c
UNIT_TESTS := t/unit/addr t/unit/parse t/unit/match t/unit/socks_proto \
              t/unit/image t/unit/lazy \
              t/unit/activation

RULES_OBJ   := $(RULES_SRC:%.c=$(O)/%.o)
SESSION_OBJ := $(SESSION_SRC:%.c=$(O)/%.o)
CHECK_OBJ   := $(CHECK_SRC:%.c=$(O)/%.o)
RULES_LIB   := $(O)/rules/librules.a
SESSION_BIN := $(O)/sockd-session/sockd-session
CHECK_BIN   := $(O)/sockd-check/sockd-check
UNIT_BINS   := $(UNIT_TESTS:%=$(O)/%.t)

.PHONY: all run check test asan install uninstall clean deps-build deps-test

all: $(SESSION_BIN) $(CHECK_BIN)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/rules/conf_image.o: $(wildcard rules/*.c rules/*.h)

$(RULES_LIB): $(RULES_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SESSION_BIN): $(SESSION_OBJ) $(RULES_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_HARDEN) $(LDFLAGS) -o $@ $^

$(CHECK_BIN): $(CHECK_OBJ) $(RULES_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_HARDEN) $(LDFLAGS) -o $@ $^

# Unit tests link the pieces they test; test_activation also links
# libsystemd to prove our LISTEN_FDS reader agrees with sd_listen_fds(3).
$(O)/t/unit/%.t: $(O)/t/unit/%.o $(O)/t/unit/tap.o $(filter-out $(O)/sockd-session/main.o,$(SESSION_OBJ)) $(RULES_LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_HARDEN) -o $@ $(filter %.o,$^) $(RULES_LIB) $(if $(findstring activation,$@),$(shell pkg-config --libs libsystemd))

$(O)/t/unit/%.o: t/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -It/unit -MMD -MP -c -o $@ $<

deps-build:
	@sh t/deps.sh build

deps-test:
	@sh t/deps.sh test

run: deps-build
	$(MAKE) all
	@echo "sockd-session: serving SOCKS on 127.0.0.1:$(PORT) with conf/sockd.conf (Ctrl-C stops)"
	systemd-socket-activate --accept -l 127.0.0.1:$(PORT) \
	  $(abspath $(SESSION_BIN)) -f $(abspath conf/sockd.conf) -d

check: deps-test
	$(MAKE) all units
	$(MAKE) test

units: $(UNIT_BINS)

# Every test, unit and integration, through one prove run; O= tells the
# integration tests which binaries to drive.
test:
	SOCKD_BUILD=$(abspath $(O)) prove --exec env $(UNIT_BINS) $(sort $(wildcard t/*.t))

# pam_wrapper is preloaded in some tests: ASan must accept not being first.
# A session makes itself non-dumpable after the privilege drop, so
# LeakSanitizer cannot read /proc/self/task at its exit: leaks are checked
# in the unit tests (and the fuzzers), the sessions run without.
asan:
	$(MAKE) deps-test
	$(MAKE) O=build-asan SANITIZE=1 all units
	prove --exec env $(UNIT_TESTS:%=build-asan/%.t)
	ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 \
	  $(MAKE) O=build-asan SANITIZE=1 test

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PAMDIR) \
	  $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(SESSION_BIN) $(CHECK_BIN) $(DESTDIR)$(SBINDIR)/
	for u in sockd.socket sockd@.service; do \
	  sed 's|/usr/local/sbin/|$(SBINDIR)/|g; s|/etc/sockd.conf|$(SYSCONFDIR)/sockd.conf|g' \
	    units/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 pam.d/sockd $(DESTDIR)$(PAMDIR)/sockd
	[ -e $(DESTDIR)$(SYSCONFDIR)/sockd.conf ] || \
	  install -m 0644 conf/sockd.conf $(DESTDIR)$(SYSCONFDIR)/sockd.conf
	install -m 0644 man/sockd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/sockd-session.8 man/sockd-check.8 $(DESTDIR)$(MANDIR)/man8/

# The rules file is configuration: uninstall leaves it, as dpkg would; its
# compiled image is a cache and goes.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/sockd-session $(DESTDIR)$(SBINDIR)/sockd-check \
	  $(DESTDIR)$(UNITDIR)/sockd.socket $(DESTDIR)$(UNITDIR)/sockd@.service \
	  $(DESTDIR)$(PAMDIR)/sockd $(DESTDIR)$(MANDIR)/man5/sockd.conf.5 \
	  $(DESTDIR)$(MANDIR)/man8/sockd-session.8 $(DESTDIR)$(MANDIR)/man8/sockd-check.8 \
	  $(DESTDIR)$(SYSCONFDIR)/sockd.conf.compiled

clean:
	rm -rf build-asan build-fuzz
	find . -type f \( -name '*.o' -o -name '*.d' -o -name '*.a' \) -exec rm -f {} +
	rm -f $(SESSION_BIN) $(CHECK_BIN) $(UNIT_BINS)

-include $(RULES_OBJ:.o=.d) $(SESSION_OBJ:.o=.d) $(CHECK_OBJ:.o=.d)

# Fuzzing (clang + libFuzzer): `make fuzz FUZZ_TIME=seconds` runs each
# target that long; t/80-fuzz.t runs a fixed number of inputs in make check.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined -Irules -Isockd-session
FUZZ_TIME  ?= 60
FUZZ_BINS  := build-fuzz/fuzz_socks build-fuzz/fuzz_rules build-fuzz/fuzz_image

build-fuzz/fuzz_socks: fuzz/fuzz_socks.c sockd-session/socks_proto.c $(RULES_SRC) $(wildcard rules/*.h sockd-session/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_rules: fuzz/fuzz_rules.c $(RULES_SRC) $(wildcard rules/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_image: fuzz/fuzz_image.c $(RULES_SRC) $(wildcard rules/*.h)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)

fuzz-build: $(FUZZ_BINS)

# In a private network namespace: host names in fuzzed rules must not
# reach a resolver.
fuzz: fuzz-build
	@mkdir -p build-fuzz/corpus-socks build-fuzz/corpus-rules build-fuzz/corpus-image
	unshare --net build-fuzz/fuzz_socks -max_total_time=$(FUZZ_TIME) \
	  build-fuzz/corpus-socks fuzz/corpus/socks
	unshare --net build-fuzz/fuzz_rules -max_total_time=$(FUZZ_TIME) \
	  -dict=fuzz/rules.dict build-fuzz/corpus-rules conf t/conf
	unshare --net build-fuzz/fuzz_image -max_total_time=$(FUZZ_TIME) \
	  -dict=fuzz/rules.dict build-fuzz/corpus-image conf t/conf

.PHONY: fuzz fuzz-build

# Benchmarks against Dante, microsocks and a direct connection (issue 7);
# writes bench/RESULTS.md.  Not part of check.
.PHONY: bench burst soak
bench:
	bench/run

# Load and faults (issue 8): 1 000 concurrent checksummed sessions, then
# resets, a target that never answers or never reads, kill -9 of one
# session among 50; writes bench/SOAK.md.
soak:
	bench/soak

# The shipped sockd.socket under a real systemd (a systemd-nspawn container
# of Debian bookworm): a burst of 500 connections in one second must not
# put it into a failed state (issue 8); writes bench/BURST.md.
burst:
	bench/burst
