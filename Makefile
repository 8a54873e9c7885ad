.PHONY: setup run test
setup:
	./scripts/setup.sh

# Fresh machine: set up, queue the example plan, start galaxy on the simulated rig.
run: setup
	.venv/bin/galaxy submit shared/plans/video.md
	.venv/bin/galaxy up --sim

# Fresh machine: set up (venv, packages, Debian test tools) and run the whole test suite.
test:
	./scripts/test.sh
