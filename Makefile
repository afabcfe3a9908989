# The two quickstart commands (README): `make demo` and `make test`.
# Both run the idempotent install step first (a no-op when .venv is up to date).
.PHONY: install demo test bench-quick clean

install:
	@bash scripts/install.sh

demo: install
	.venv/bin/dynst-pyg prune --out runs/demo

test: install
	OPENBLAS_NUM_THREADS=1 .venv/bin/python -m pytest -q

clean:
	rm -rf .venv build *.egg-info .pytest_cache .hypothesis
