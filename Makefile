# geopre: the two set-up commands are `make install` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST_ARGS ?=
PRESET  ?= small

.PHONY: install test demo bench peers reproduce ffmpeg clean

install: ffmpeg $(BIN)/geopre

# ffmpeg/ffprobe are system tools; install them with apt-get only when missing.
ffmpeg:
	@if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then \
	  echo "ffmpeg: $$(command -v ffmpeg)"; \
	else \
	  echo "ffmpeg missing: installing with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; \
	fi

$(BIN)/geopre: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -c "import torchvision; torchvision.models.resnet18(); print('torch + torchvision import and build: ok')"
	@touch $@

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test:
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected"; exit 1; fi; exit $$rc

demo:
	$(BIN)/geopre demo --out demo

# The paper's claims on the embedded world; PRESET=tiny|small|paper|hd. Reruns reuse finished stages.
reproduce:
	$(BIN)/geopre reproduce --preset $(PRESET) --out results/$(PRESET)

bench:
	$(BIN)/python -m bench.run

# The peer tools `make bench` compares with (video2dataset, MosaicML streaming), in .venv-peers:
# they pin numpy < 2 and an older torch, so they never go into $(VENV) (bench/peers_env.sh).
peers: $(BIN)/geopre
	bash bench/peers_env.sh $(VENV) .venv-peers

clean:
	rm -rf demo bench/results/*.tmp .pytest_cache
