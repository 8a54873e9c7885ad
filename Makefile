.PHONY: setup run test
setup:
	./scripts/setup.sh

# Fresh machine: set up, queue the example plan, start galaxy on the simulated rig.
# Running it again queues the plan again (a new batch) and reuses the running supervisor.
run: setup
	.venv/bin/galaxy submit shared/plans/video.md
	.venv/bin/galaxy up --sim
	@echo "The rig keeps running. Results: shared/runs/<batch>/. Watch again: .venv/bin/galaxy attach;"
	@echo "queue: .venv/bin/galaxy status; stop it: .venv/bin/galaxy down"

# Fresh machine: set up (venv, packages, Debian test tools) and run the whole test suite.
test:
	./scripts/test.sh
