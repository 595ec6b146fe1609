# Next-Gen CRM. `make` builds; `make run` / `make stop` the embedded stack; `make test` everything.
CC ?= cc
BUILD ?= build
SAN ?=
PG_INC := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -D_FORTIFY_SOURCE=2 -Ilib -I$(PG_INC) $(SAN) -MMD -MP
LDLIBS = -lfcgi -lpq -lcjson -lcrypto -lcrypt -lcurl -lm
TEST_LDLIBS = $(LDLIBS) -lcmocka

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
AUTH_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/auth/*.c))
LEADS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/leads/*.c))
DASH_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/dashboard/*.c))
EVENTS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/events/*.c))
CTL_OBJ := $(BUILD)/src/crmctl.o $(BUILD)/src/seed.o $(BUILD)/src/backup.o $(BUILD)/src/doctor.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PROGS := $(BUILD)/crm-auth $(BUILD)/crm-leads $(BUILD)/crm-dashboard $(BUILD)/crm-events $(BUILD)/crm-mailer \
	$(BUILD)/crm-webhooks $(BUILD)/crmctl

.SECONDARY:
.PHONY: all run stop test soak unit api asan format lint clean deps bench bench-sse bench-console \
	bench-metrics bench-webhooks bench-cluster cluster cluster-stop test-cluster \
	screenshots install deb fuzz fuzz-bins
all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(dir $<) -c -o $@ $<

$(BUILD)/libcrm.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/crm-auth: $(AUTH_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/crm-leads: $(LEADS_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/crm-dashboard: $(DASH_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/crm-events: $(EVENTS_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/crm-mailer: $(BUILD)/src/mailer.o $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lesmtp

$(BUILD)/crm-webhooks: $(BUILD)/src/webhooks.o $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/crmctl: $(CTL_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lssl

# The SSE load generator of make bench.
$(BUILD)/sse-bench: $(BUILD)/bench/sse-bench.o
	$(CC) $(SAN) -o $@ $^ -lpthread

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libcrm.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(TEST_LDLIBS)

# The embedded stack under ./var: installs what is missing, builds, starts everything.
run: deps all
	scripts/stack.sh start

stop:
	scripts/stack.sh stop

deps:
	scripts/deps.sh

# Unit tests and API tests, all built with AddressSanitizer and UBSan. The optimised build too:
# the tests of behaviour that hangs on the allocator or on timing also run what make run runs.
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test: deps all
	$(MAKE) BUILD=build/asan SAN="$(SANFLAGS)" CFLAGS="-O1 -g" all unit-bins
	$(MAKE) fuzz-bins
	scripts/test.sh build/asan

# Several machines on this one, as root (scripts/cluster.sh: network namespaces): a front nginx,
# two application hosts installed as `make install` lays them out, a PostgreSQL primary and its
# synchronous standby, an SMTP server; README "Several hosts". make test-cluster runs its test
# (tests/cluster: it builds and removes a deployment of its own), which make test runs too.
cluster: deps all
	scripts/cluster.sh up
cluster-stop:
	scripts/cluster.sh down
test-cluster: deps all
	/usr/bin/python3 -m pytest -q -p no:cacheprovider -s tests/cluster

# The chaos soak (tests/soak/soak.py): the sanitized stack under mixed load while its parts are
# killed at random, then its invariants, PASS/FAIL. Its own stack under var/soak on
# CRM_SOAK_PORT (18090) and CRM_SOAK_MAIL_PORT (18035). make test runs a short one.
SOAK_SECONDS ?= 600
soak: deps all
	$(MAKE) BUILD=build/asan SAN="$(SANFLAGS)" CFLAGS="-O1 -g" all
	SOAK_SECONDS=$(SOAK_SECONDS) /usr/bin/python3 tests/soak/soak.py build/asan

# wrk and pgbench against a fresh optimised stack under var/bench; writes bench/results.md.
bench: deps all $(BUILD)/sse-bench
	/usr/bin/python3 bench/bench.py
	/usr/bin/python3 bench/sse.py
	/usr/bin/python3 bench/console.py
	/usr/bin/python3 bench/metrics.py
	/usr/bin/python3 bench/webhooks.py

# Only the webhook part of make bench: deliveries per second and commit-to-delivery latency
# against local receivers; writes its section of bench/results.md.
bench-webhooks: deps all
	/usr/bin/python3 bench/webhooks.py

# What the synchronous standby costs, on the cluster (as root): POST /api/leads and pgbench commits
# with and without it; writes bench/results-cluster.md.
bench-cluster: deps all
	/usr/bin/python3 bench/cluster.py

# Only the metrics part of make bench: req/s with and without the figures of /metrics; writes its
# section of bench/results.md.
bench-metrics: deps all
	/usr/bin/python3 bench/metrics.py

# Only the real-time part of make bench: 10 000 SSE streams; writes bench/results-sse.md.
bench-sse: deps all $(BUILD)/sse-bench
	/usr/bin/python3 bench/sse.py

# Only the console part of make bench: the leads page of 100 000 leads loaded in Chromium,
# timed by its navigation timing; writes its section of bench/results.md.
bench-console: deps all
	/usr/bin/python3 bench/console.py

# The README's pictures of the console (docs/screen-*.png), from a seeded stack under var/screens.
screenshots: deps all
	/usr/bin/python3 scripts/screenshots.py

unit-bins: $(UNIT_BIN)

# libFuzzer targets (tests/fuzz/fuzz_*.c), one per parser of outside input, built with clang
# against lib/ compiled apart under build/fuzz with the fuzzer's coverage and ASan/UBSan; the
# main build is untouched. make fuzz runs each for FUZZ_SECONDS and fails on any crash, leak,
# timeout or broken property (README "Fuzzing"); make test runs each briefly (scripts/test.sh).
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_BUILD = build/fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# clang, unlike gcc, flags the fields a designated initializer leaves to zero (lib/err.c).
FUZZ_CFLAGS = -std=gnu11 -O1 -g $(WARN) -Wno-missing-field-initializers -Ilib -I. -I$(PG_INC) \
	$(FUZZ_SAN) -MMD -MP
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/tests/fuzz/common.o

$(FUZZ_LIB_OBJ) $(FUZZ_OBJ): $(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libcrm.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_BIN): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/tests/fuzz/%.o $(FUZZ_BUILD)/tests/fuzz/common.o \
		$(FUZZ_BUILD)/libcrm.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

fuzz: deps fuzz-bins
	scripts/fuzz.sh $(FUZZ_SECONDS)

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do echo "== $$t"; $$t || exit 1; done

format:
	clang-format -i lib/*.[ch] cgi-src/*/*.[ch] src/*.c tests/unit/*.c tests/fuzz/*.[ch] bench/*.c

lint:
	clang-format --dry-run -Werror lib/*.[ch] cgi-src/*/*.[ch] src/*.c tests/unit/*.c \
		tests/fuzz/*.[ch] bench/*.c
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
		-I lib lib cgi-src src

# Production layout: make install PREFIX=/usr DESTDIR=/tmp/root (see README "Deployment").
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
DATADIR = $(PREFIX)/share/crm
LIBDIR = $(PREFIX)/lib
LIBEXECDIR = $(LIBDIR)/crm
SYSCONFDIR ?= /etc
RUNDIR ?= /run/crm
LISTEN ?= 80
POOL_PROGS = crm-auth crm-leads crm-dashboard
# Each pool is a unit running a program: crm-login is crm-auth, for the routes that run bcrypt.
POOLS = $(POOL_PROGS) crm-login
ACCESS_LOG ?= /var/log/nginx/crm-access.log
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@RUNDIR@|$(RUNDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g'
NGINX_SUBST = -e 's|@SOCKDIR@|$(RUNDIR)|g' -e 's|@LISTEN@|$(LISTEN)|g' \
	-e 's|@WEBROOT@|$(DATADIR)/web|g' -e 's|@CONFDIR@|$(SYSCONFDIR)/nginx/snippets|g' \
	-e 's|@ACCESS_LOG@|$(ACCESS_LOG)|g'
HARDEN = sed -e '/@HARDENING@/{r systemd/hardening.conf' -e 'd}'
UNITDIR = $(DESTDIR)$(LIBDIR)/systemd/system
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/web $(UNITDIR) \
		$(DESTDIR)$(LIBDIR)/tmpfiles.d $(DESTDIR)$(LIBDIR)/sysusers.d \
		$(DESTDIR)$(SYSCONFDIR)/nginx/sites-available $(DESTDIR)$(SYSCONFDIR)/nginx/snippets \
		$(DESTDIR)$(SYSCONFDIR)/crm $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BUILD)/crmctl $(DESTDIR)$(BINDIR)/crmctl
	for p in $(POOL_PROGS) crm-events crm-mailer crm-webhooks; do install -m 0755 $(BUILD)/$$p $(DESTDIR)$(SBINDIR)/$$p; done
	install -m 0644 schema.sql $(DESTDIR)$(DATADIR)/schema.sql
	# The web console and the contract's reference page (/docs/): static files nginx serves as
	# they are (no build step); the contract itself at /api/openapi.yaml (and .json).
	cp -R web/. $(DESTDIR)$(DATADIR)/web/
	install -d $(DESTDIR)$(DATADIR)/web/api
	install -m 0644 docs/openapi.yaml $(DESTDIR)$(DATADIR)/web/api/openapi.yaml
	/usr/bin/python3 scripts/openapi-json.py docs/openapi.yaml $(DESTDIR)$(DATADIR)/web/api/openapi.json
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/web
	for p in $(POOLS); do prog=$$p; [ $$p != crm-login ] || prog=crm-auth; \
		$(HARDEN) systemd/crm-pool.service.in | $(SUBST) -e 's|@POOL@|'$$p'|g' \
		-e 's|@PROG@|'$$prog'|g' >$(UNITDIR)/$$p.service; done
	for u in crm-events crm-events@ crm-mailer crm-webhooks crm-migrate crm-backup; do $(HARDEN) systemd/$$u.service.in | \
		$(SUBST) >$(UNITDIR)/$$u.service; done
	install -m 0644 systemd/crm.target systemd/crm-backup.timer $(UNITDIR)/
	# The backup with its retention, which crm-backup.service runs (README "Backups").
	$(SUBST) systemd/crm-backup.in >$(DESTDIR)$(LIBEXECDIR)/crm-backup
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/crm-backup
	install -m 0644 etc/crm.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/crm
	$(SUBST) systemd/crm.tmpfiles >$(DESTDIR)$(LIBDIR)/tmpfiles.d/crm.conf
	install -m 0644 systemd/crm.sysusers $(DESTDIR)$(LIBDIR)/sysusers.d/crm.conf
	sed $(NGINX_SUBST) nginx/crm-site.conf.in >$(DESTDIR)$(SYSCONFDIR)/nginx/sites-available/crm.conf
	for f in nginx/crm-*.conf; do sed $(NGINX_SUBST) $$f \
		>$(DESTDIR)$(SYSCONFDIR)/nginx/snippets/$${f#nginx/}; done
	# The settings file is the operator's: installed once, never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/crm/crm.env ] || \
		install -m 0640 etc/crm.env.example $(DESTDIR)$(SYSCONFDIR)/crm/crm.env

# A Debian package of the install above: build/crm_<version>_<arch>.deb.
VERSION := $(shell cat VERSION)
ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB = $(BUILD)/crm_$(VERSION)_$(ARCH).deb
deb:
	rm -rf $(BUILD)/deb
	$(MAKE) install PREFIX=/usr DESTDIR=$(CURDIR)/$(BUILD)/deb
	strip --strip-unneeded $(BUILD)/deb/usr/sbin/* $(BUILD)/deb/usr/bin/*
	install -d $(BUILD)/deb/DEBIAN $(BUILD)/deb/usr/share/doc/crm
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(ARCH)/' debian/control.in \
		>$(BUILD)/deb/DEBIAN/control
	install -m 0755 debian/postinst debian/prerm debian/postrm $(BUILD)/deb/DEBIAN/
	install -m 0644 debian/conffiles $(BUILD)/deb/DEBIAN/
	install -m 0644 README.md docs/API.md debian/copyright $(BUILD)/deb/usr/share/doc/crm/
	gzip -9n <debian/changelog >$(BUILD)/deb/usr/share/doc/crm/changelog.gz
	dpkg-deb --root-owner-group -Zxz --build $(BUILD)/deb $(DEB)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
