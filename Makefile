.PHONY: setup run test
setup:
	./scripts/setup.sh

# Fresh machine: set up, then start galaxy on the simulated rig with the live demo: the
# supervisor keeps it busy (the example plan, generated llm/script/cpu work, a few failures,
# now and then an escalation to a simulated cloud model) and the dashboard opens.
# Quitting the dashboard leaves the rig running; running it again reuses that supervisor.
run: setup
	.venv/bin/galaxy up --sim --demo
	@echo "The rig keeps running. Watch again: .venv/bin/galaxy attach; queue: .venv/bin/galaxy status;"
	@echo "stop it (and the demo's work): .venv/bin/galaxy down"

# Fresh machine: set up (venv, packages, Debian test tools) and run the whole test suite.
test:
	./scripts/test.sh
