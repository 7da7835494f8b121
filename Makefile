# ser-live: 'make run' sets everything up and starts the monitor; 'make test' sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

# System packages: PortAudio headers to build PyAudio, libsndfile for soundfile, and the libraries
# Qt's xcb platform plugin needs on a minimal Debian/Ubuntu.
# python3-venv / python3-dev only when this Python lacks ensurepip / its headers (Debian splits them off).
PY_APT    := $(shell $(PYTHON) -c "import ensurepip" 2>/dev/null || echo python3-venv) \
             $(shell $(PYTHON) -c "import os,sys,sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null || echo python3-dev)
APT_BUILD := $(PY_APT) gcc portaudio19-dev libsndfile1
APT_GUI   := libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
             libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
# What the tests drive: a private PulseAudio server as the microphone, espeak-ng speech, a virtual
# X display for the real window (xdotool unmaps it, as a window manager minimises it, for bench.py), imagemagick
# screenshots, tmux for the terminal view.
# libasound2-plugins lets PortAudio (through ALSA) reach the private PulseAudio server.
APT_TEST  := pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox xvfb x11-utils xdotool imagemagick tmux

.PHONY: run test setup setup-test lint bench train regression-record study frontend-study select corpus-study install-desktop clean

run: $(VENV)/.stamp-run
	$(VENV)/bin/ser-live $(ARGS)

test: $(VENV)/.stamp-test
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

setup: $(VENV)/.stamp-run
setup-test: $(VENV)/.stamp-test

$(VENV)/.stamp-run: setup.cfg pyproject.toml
	bash scripts/ensure_apt.sh $(APT_BUILD) $(APT_GUI)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	$(PIP) install -e ".[gui,fast]"
	$(PY) -m compileall -q ser_live  # as a regular pip install does: start-up need not compile the sources
	# The default model's encoder graph for ONNX Runtime, built once into the user cache: the first start loads it.
	$(PY) -c "from ser_live.model.emotion_model import EmotionModel; print(EmotionModel.load().extractor.runs_on)"
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-run
	bash scripts/ensure_apt.sh $(APT_TEST)
	$(PIP) install -e ".[gui,fast,train,test,cluster,lsl]"
	touch $@

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check ser_live scripts tests

bench: $(VENV)/.stamp-test
	$(PY) scripts/bench.py $(ARGS)

# Both shipped models: the default (speech encoder; models/) and the light one (handcrafted; models/light/).
# Each is trained, then its live speaker-adaptation evaluation adds its figures to that directory's metrics.json
# and MODEL_CARD.md; it must come second, as it checks that the directory holds the model of the evaluation it
# reruns. Last, its confidence is calibrated on the corpora under ../shared/data it was not trained on
# (scripts/calibrate_model.py: the temperature goes into the model file, the figures into the card). ARGS go to
# train.py; with --no-adaptation there is no adaptive variant to evaluate. The new models are what 'make run' and
# the tests use from then on; the regression record is made anew for them.
train: $(VENV)/.stamp-test
	$(PY) scripts/train.py --data ../shared/data --out models/ $(ARGS)
	$(if $(filter --no-adaptation,$(ARGS)),,$(PY) scripts/evaluate_adaptation.py --data ../shared/data --model-dir models/)
	$(PY) scripts/calibrate_model.py --data ../shared/data --model-dir models/
	$(PY) scripts/train.py --model light --data ../shared/data --out models/light/ $(ARGS)
	$(if $(filter --no-adaptation,$(ARGS)),,$(PY) scripts/evaluate_adaptation.py --model light --data ../shared/data --model-dir models/light/)
	$(PY) scripts/calibrate_model.py --model light --data ../shared/data --model-dir models/light/
	$(MAKE) regression-record

# The features and probabilities tests/test_extractor_regression.py compares with, for the models in models/.
regression-record: $(VENV)/.stamp-test
	$(PY) tests/data/make_extractor_regression.py

# The representation study behind the default model (models/encoder_selection.md; about an hour on 2 cores).
study: $(VENV)/.stamp-test
	$(PIP) install -e ".[gui,fast,train,test,study]"
	$(PY) scripts/encoder_study.py --data ../shared/data --out models/encoder_selection.md $(ARGS)

# Whether cleaning the audio first (WPE dereverberation, DeepFilterNet3 noise suppression) narrows the room gap
# (models/frontend_study.md; about 80 minutes on 2 cores, then its features are kept).
frontend-study: $(VENV)/.stamp-test
	$(PIP) install -e ".[gui,fast,train,test,study]"
	$(PY) scripts/frontend_study.py --data ../shared/data --out models/frontend_study.md $(ARGS)

# Which configurations ship, by a corpus never heard and a noisy room (models/model_selection.md; hours on 2 cores
# the first time, most of it the augmented copies' and the WPE candidates' encoder features, then cached).
select: $(VENV)/.stamp-test
	$(PIP) install -e ".[gui,fast,train,test]"
	$(PY) scripts/select_model.py --data ../shared/data --out models/model_selection.md $(ARGS)

# Five corpora, each held out in turn: ways of training on all of them, and how true the confidence is on the one
# left out (models/corpus_study.md; about 25 minutes of encoder features the first time, then a few minutes a
# candidate). The light family's table goes beside it.
corpus-study: $(VENV)/.stamp-test
	$(PY) scripts/corpus_study.py --data ../shared/data --cv "shipped recipe" --out models/corpus_study.md $(ARGS)
	$(PY) scripts/corpus_study.py --model light --data ../shared/data --cv "shipped recipe" --out models/light/corpus_study.md $(ARGS)

install-desktop: $(VENV)/.stamp-run
	$(PY) scripts/install_desktop.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
