# The two commands of the README. Both start by installing what they need (scripts/setup, idempotent).
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup cluster test unit molecule lint down

setup:
	./scripts/setup

# Boot the lab hosts, write inventory/lab/hosts.yml, provision the cluster.
cluster: setup
	kpy-lab up
	ansible-playbook site.yml

# Unit tests, lint, then every Molecule scenario (each boots and removes its own lab hosts).
test: setup
	pytest -q tests
	ansible-lint
	./scripts/molecule-all

down:
	kpy-lab down
