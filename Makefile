# fusefs - one non-recursive Makefile.
#
#   make            build every program into build/
#   make test       build and run every test (unit, simulator, integration)
#   make asan       the unit tests and simulator under ASan+UBSan (build-asan/)
#   make valgrind   the unit tests under valgrind
#   make bench      benchmarks, printed as tables
#   make install PREFIX=/usr/local DESTDIR=
#
# V=1 shows the commands.  Every compile first makes sure the Debian
# packages are installed (scripts/install-deps.sh), so a fresh machine needs
# nothing else.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
SAN ?= 0
CC ?= cc

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := fuse3 liburing libcrypto sqlite3

CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wundef -Wvla -Wwrite-strings \
	-O2 -g -MD -MP -I. -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=314
LDFLAGS :=
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# Recursive (=) so pkg-config runs after install-deps has run.  Each program
# links only the libraries its objects use.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
libs = $(shell pkg-config --libs $(1)) -lpthread
MKFS_LIBS = $(call libs,liburing libcrypto sqlite3)
PRINT_LIBS = $(call libs,liburing sqlite3)
MOUNT_LIBS = $(call libs,fuse3 liburing libcrypto sqlite3)
SIM_LIBS = $(call libs,liburing libcrypto)
ALL_LIBS = $(call libs,$(PKGS))
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS = $(shell pkg-config --libs check)

DEPS_STAMP := $(BUILD)/.deps-installed

LIB_SRCS := $(filter-out %_main.c,$(wildcard common/*.c blockdev/*.c quorum/*.c server/*.c fuse/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libfusefs.a

PROGS := $(BUILD)/fusefs-mkfs $(BUILD)/fusefs-print
PROG_MAINS := server/mkfs_main.c server/print_main.c
ifneq ($(wildcard fuse/mount_main.c),)
PROGS += $(BUILD)/fusefs-mount
PROG_MAINS += fuse/mount_main.c
endif
PROGS += $(BUILD)/fusefs-posix $(BUILD)/fusefs-hostile $(BUILD)/fusefs-fsbench $(BUILD)/fusefs-crashtest $(BUILD)/fusefs-faultfs $(BUILD)/fusefs-coherence $(BUILD)/fusefs-writer $(BUILD)/fusefs-locktest $(BUILD)/fusefs-fileops
PROG_MAINS += tests/posix_main.c tests/hostile_main.c tests/fsbench_main.c tests/crash_main.c tests/faultfs_main.c tests/coherence_main.c tests/writer_main.c tests/locktest_main.c tests/fileops_main.c
ifneq ($(wildcard tests/sim_main.c),)
PROGS += $(BUILD)/fusefs-sim
PROG_MAINS += tests/sim_main.c
endif
PROGS += $(BUILD)/fusefs-wsim
PROG_MAINS += tests/wsim_main.c

UNIT_SRCS := $(wildcard tests/unit_*.c) tests/harness.c
UNIT := $(BUILD)/fusefs-unit
BENCH_SRCS := $(wildcard tests/bench_*.c)
BENCH := $(BUILD)/fusefs-bench

ALL_OBJS := $(LIB_OBJS) $(PROG_MAINS:%.c=$(BUILD)/%.o) $(UNIT_SRCS:%.c=$(BUILD)/%.o) \
	$(BENCH_SRCS:%.c=$(BUILD)/%.o)

.PHONY: all test unit sim-test integration asan valgrind bench install clean deps check-layers

all: $(PROGS) $(UNIT)

deps: $(DEPS_STAMP)

$(DEPS_STAMP): scripts/install-deps.sh
	$(Q)scripts/install-deps.sh
	$(Q)mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/fusefs-mkfs: $(BUILD)/server/mkfs_main.o $(LIB)
$(BUILD)/fusefs-mkfs: PROG_LIBS = $(MKFS_LIBS)
$(BUILD)/fusefs-print: $(BUILD)/server/print_main.o $(LIB)
$(BUILD)/fusefs-print: PROG_LIBS = $(PRINT_LIBS)
$(BUILD)/fusefs-mount: $(BUILD)/fuse/mount_main.o $(LIB)
$(BUILD)/fusefs-mount: PROG_LIBS = $(MOUNT_LIBS)
$(BUILD)/fusefs-posix: $(BUILD)/tests/posix_main.o
$(BUILD)/fusefs-posix: PROG_LIBS =
$(BUILD)/fusefs-coherence: $(BUILD)/tests/coherence_main.o
$(BUILD)/fusefs-coherence: PROG_LIBS =
$(BUILD)/fusefs-writer: $(BUILD)/tests/writer_main.o
$(BUILD)/fusefs-writer: PROG_LIBS =
$(BUILD)/fusefs-locktest: $(BUILD)/tests/locktest_main.o
$(BUILD)/fusefs-locktest: PROG_LIBS = $(call libs,sqlite3)
$(BUILD)/fusefs-fileops: $(BUILD)/tests/fileops_main.o
$(BUILD)/fusefs-fileops: PROG_LIBS =
$(BUILD)/fusefs-fsbench: $(BUILD)/tests/fsbench_main.o
$(BUILD)/fusefs-fsbench: PROG_LIBS = -lpthread
$(BUILD)/fusefs-crashtest: $(BUILD)/tests/crash_main.o $(LIB)
$(BUILD)/fusefs-crashtest: PROG_LIBS = $(call libs,liburing libcrypto sqlite3)
$(BUILD)/fusefs-faultfs: $(BUILD)/tests/faultfs_main.o
$(BUILD)/fusefs-faultfs: PROG_LIBS = $(call libs,fuse3)
$(BUILD)/fusefs-hostile: $(BUILD)/tests/hostile_main.o $(LIB)
$(BUILD)/fusefs-hostile: PROG_LIBS = $(call libs,liburing libcrypto)
$(BUILD)/fusefs-sim: $(BUILD)/tests/sim_main.o $(LIB)
$(BUILD)/fusefs-sim: PROG_LIBS = $(SIM_LIBS)
$(BUILD)/fusefs-wsim: $(BUILD)/tests/wsim_main.o $(BUILD)/tests/harness.o $(LIB)
$(BUILD)/fusefs-wsim: PROG_LIBS = $(ALL_LIBS)

$(PROGS):
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(PROG_LIBS)

$(UNIT): $(UNIT_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(ALL_LIBS)

$(BENCH): $(BENCH_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(ALL_LIBS)

# Dependencies point one way and the pure files stay pure (the script says
# what it checked).
check-layers:
	$(Q)scripts/check-layers.sh

unit: $(UNIT)
	$(UNIT)

# test-fs.sh runs its hostile-client scenario on members built with ASan+UBSan.
test: all check-layers
	$(UNIT)
	FUSEFS_UNIT_ENTRIES=1000000 CK_RUN_CASE=million $(UNIT)
	$(Q)scripts/test-unprivileged.sh $(BUILD)
	$(Q)$(BUILD)/fusefs-crashtest /var/tmp/fusefs-crashtest.$$$$.img 200
	$(Q)if [ -x scripts/test-sim.sh ]; then scripts/test-sim.sh $(BUILD); fi
	$(Q)for t in scripts/test-cli.sh scripts/test-integration.sh scripts/test-faults.sh; do \
		if [ -x $$t ]; then $$t $(BUILD) || exit 1; fi; done
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 build-asan/fusefs-mount
	$(Q)scripts/test-fs.sh $(BUILD)
	$(Q)scripts/test-failover.sh $(BUILD) 500
	$(Q)scripts/test-failover.sh $(BUILD) 2000
	$(Q)scripts/test-stall.sh $(BUILD) 500
	$(Q)scripts/test-stall.sh $(BUILD) 2000
	$(Q)scripts/test-space.sh $(BUILD)
	$(Q)scripts/test-locks.sh $(BUILD)
	$(Q)scripts/test-fileops.sh $(BUILD)
	@echo "make test: all tests passed"

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/fusefs-unit
	$(Q)if [ -x scripts/test-sim.sh ]; then SIM_QUICK=1 scripts/test-sim.sh build-asan; fi
	$(Q)if [ -x scripts/test-cli.sh ]; then scripts/test-cli.sh build-asan; fi
	$(Q)if [ -x scripts/test-integration.sh ]; then scripts/test-integration.sh build-asan; fi
	$(Q)scripts/test-fs.sh build-asan
	$(Q)if [ -x scripts/test-faults.sh ]; then scripts/test-faults.sh build-asan; fi

valgrind: $(UNIT)
	$(Q)scripts/install-deps.sh --with-valgrind
	FUSEFS_QUICK=1 FUSEFS_VALGRIND=1 CK_FORK=no valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite -q $(UNIT)

bench: $(BENCH) $(PROGS)
	$(BENCH)
	$(Q)scripts/bench-cluster.sh $(BUILD) 10 60
	$(Q)scripts/bench-fs.sh $(BUILD)
	$(Q)scripts/bench-failover.sh $(BUILD) 20 5 500 2000
	$(Q)scripts/bench-space.sh $(BUILD) 1024
	$(Q)scripts/bench-locks.sh $(BUILD) 20

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(filter-out $(BUILD)/fusefs-sim $(BUILD)/fusefs-wsim $(BUILD)/fusefs-coherence $(BUILD)/fusefs-writer $(BUILD)/fusefs-locktest $(BUILD)/fusefs-fileops $(BUILD)/fusefs-posix $(BUILD)/fusefs-hostile $(BUILD)/fusefs-fsbench $(BUILD)/fusefs-crashtest,$(PROGS)) $(DESTDIR)$(PREFIX)/sbin/
	# mount -t fuse.fusefs (and fstab) run the subtype, "fusefs", through mount.fuse3
	ln -sf fusefs-mount $(DESTDIR)$(PREFIX)/sbin/fusefs
	install -m 644 docs/man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	# a member (or client) as a service that comes back after a reboot, and fstab lines
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/fusefs
	sed 's|@SBINDIR@|$(PREFIX)/sbin|' contrib/fusefs-member@.service \
		>$(DESTDIR)$(PREFIX)/lib/systemd/system/fusefs-member@.service
	install -m 644 contrib/fstab.example $(DESTDIR)$(PREFIX)/share/doc/fusefs/

clean:
	rm -rf build build-asan

-include $(ALL_OBJS:.o=.d)
