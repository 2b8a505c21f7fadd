# PSK: the psk extension (PGXS) and the psk-shim HTTP server.
#
#   make            build the extension and the shim
#   make install    install the extension into PostgreSQL (needs root)
#   make run        build, install, start a local cluster in ./.psk and the shim
#   make run-ha     the same on a pg_auto_failover formation: a monitor and
#                   two nodes with synchronous replication (README)
#   make stop       stop whatever `make run` or `make run-ha` left running
#   make test       install what is missing, build, run every test
#   make test-stress only the concurrency and crash suite
#   make bench      throughput and latency, psk against plain SQL and HTTP
#   make bench-scale  pools of 100k, 1M and 10M codes, and a churn soak
#   make bench-backup dump and restore of 1M codes and 2M audit rows

EXTENSION   = psk
MODULE_big  = psk
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))
PGFILEDESC  = "psk - code reservation engine"

# Warnings are errors, as in the shim.  Two of -Wextra's are off:
#  unused-parameter: PG_FUNCTION_ARGS and callback signatures (bgworker main,
#    walker context) name parameters a function need not use;
#  missing-field-initializers: our static PskQuery and Columns name their
#    leading fields only and leave the caches after them to C's zeroing.
PG_CFLAGS   = -Wall -Wextra -Werror \
	-Wno-unused-parameter -Wno-missing-field-initializers

# make PSK_SANITIZE=1 with_llvm=no: the extension under AddressSanitizer and
# UndefinedBehaviorSanitizer, for a postmaster with libasan preloaded
# (test/sanitize/run.sh).  UBSan aborts at its first report; -fno-wrapv
# undoes PostgreSQL's -fwrapv, under which signed overflow is not reported.
ifdef PSK_SANITIZE
PG_CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -fno-wrapv
endif

# The install script of the current version is assembled from one file per
# concern, in name order; older versions' scripts are kept as released, with
# the upgrade scripts from each to the next.
DATA_built  = extension/psk--0.3.0.sql
DATA        = extension/psk--0.1.0.sql extension/psk--0.1.0--0.2.0.sql \
              extension/psk--0.2.0.sql extension/psk--0.2.0--0.2.1.sql \
              extension/psk--0.2.1--0.3.0.sql
EXTRA_CLEAN = extension/psk--0.3.0.sql shim/psk-shim shim/*.o shim/psk-shim-asan shim/psk-fuzz-form shim/psk-fuzz-csv shim/asan

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=pgcrypto --load-extension=psk
# Two or more sessions at once (isolationtester): specs/NAME.spec
ISOLATION      = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=pgcrypto --load-extension=psk

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

extension/psk--0.3.0.sql: $(sort $(wildcard extension/sql/*.sql))
	cat $^ > $@

ifneq ($(wildcard shim/Makefile),)
all: shim
endif

.PHONY: shim run run-ha stop test
shim:
	$(MAKE) -C shim PG_CONFIG=$(PG_CONFIG)

run:
	bash scripts/run.sh

run-ha:
	bash scripts/run-ha.sh

stop:
	bash scripts/stop.sh

test:
	bash scripts/test.sh

# Only the concurrency and crash suite (make test runs it too).
.PHONY: test-stress
test-stress:
	bash scripts/test.sh stress

# Benchmarks, not part of make test (README.md, "Benchmarks"): a throwaway
# cluster each; results in bench/results/.
.PHONY: bench bench-scale bench-backup
bench:
	bash bench/bench.sh

bench-scale:
	bash bench/scale.sh

bench-backup:
	bash bench/backup.sh
