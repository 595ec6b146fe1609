# Next-Gen CRM. `make` builds; `make run` / `make stop` the embedded stack; `make test` everything.
CC ?= cc
BUILD ?= build
SAN ?=
PG_INC := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -D_FORTIFY_SOURCE=2 -Ilib -I$(PG_INC) $(SAN) -MMD -MP
LDLIBS = -lfcgi -lpq -lcjson -lcrypto -lcrypt -lm
TEST_LDLIBS = $(LDLIBS) -lcmocka

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
AUTH_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/auth/*.c))
LEADS_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/leads/*.c))
DASH_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cgi-src/dashboard/*.c))
CTL_OBJ := $(BUILD)/src/crmctl.o $(BUILD)/src/seed.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PROGS := $(BUILD)/crm-auth $(BUILD)/crm-leads $(BUILD)/crm-dashboard $(BUILD)/crm-mailer \
	$(BUILD)/crmctl

.SECONDARY:
.PHONY: all run stop test unit api asan format lint clean deps bench
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

$(BUILD)/crm-mailer: $(BUILD)/src/mailer.o $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lesmtp

$(BUILD)/crmctl: $(CTL_OBJ) $(BUILD)/libcrm.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

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

# Unit tests and API tests, all built with AddressSanitizer and UBSan.
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test: deps
	$(MAKE) BUILD=build/asan SAN="$(SANFLAGS)" CFLAGS="-O1 -g" all unit-bins
	scripts/test.sh build/asan

# wrk and pgbench against a fresh optimised stack under var/bench; writes bench/results.md.
bench: deps
	/usr/bin/python3 bench/bench.py

unit-bins: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do echo "== $$t"; $$t || exit 1; done

format:
	clang-format -i lib/*.[ch] cgi-src/*/*.[ch] src/*.c tests/unit/*.c

lint:
	clang-format --dry-run -Werror lib/*.[ch] cgi-src/*/*.[ch] src/*.c tests/unit/*.c
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
		-I lib lib cgi-src src

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
