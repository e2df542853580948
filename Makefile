# make test: install what the tests need, lint, type-check and run every pytest pass (scripts/test.sh).
# make test INSTALL=0: the same without the install step (reruns).
INSTALL ?= 1

.PHONY: test
test:
	CRACKSAM_TEST_INSTALL=$(INSTALL) scripts/test.sh
