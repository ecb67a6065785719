# Two commands a new user needs (see README):  make pipeline   and   make test
# Each creates .venv with Python 3.11 and installs the project on first use (or when
# pyproject.toml changes), so a fresh machine needs only Python 3.11 with pip and venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PROFILE ?= auto
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: pipeline test quick lint unit-tests notebook-tests lab constraints benchmarks train-queue distill-queue clean-runs

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --user --name fer-utils --display-name "Python (fer-utils)" > /dev/null
	touch $@

## Run every notebook with papermill: short runs under reports/runs/ (the real data's CI profile, or
## the committed sample). PROFILE=full re-runs the committed notebooks and models themselves.
pipeline: $(INSTALLED)
	$(BIN)/python -m fer_utils pipeline --profile $(PROFILE)

## Lint, unit tests, then every notebook under nbval with the CI profile's parameters (what CI runs).
test: lint unit-tests notebook-tests

## For developers: lint and the unit tests without the slow ones (a few minutes).
quick: lint $(INSTALLED)
	$(BIN)/python -m pytest tests -m "not slow"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Explore the notebooks in JupyterLab with the project's kernel ("Python (fer-utils)").
lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks/

## Re-pin constraints.txt to what the virtual environment holds (after changing pyproject.toml).
## (tensorflow, for other platforms than Linux x86-64, is pinned at tensorflow-cpu's version.)
constraints: $(INSTALLED)
	$(BIN)/python -m pip freeze --exclude-editable | sort -f > constraints.frozen
	{ grep '^#' constraints.txt; cat constraints.frozen; sed -n 's/^tensorflow[-_]cpu==/tensorflow==/p' constraints.frozen; } > constraints.new
	mv constraints.new constraints.txt && rm constraints.frozen

unit-tests: $(INSTALLED)
	$(BIN)/python -m pytest tests

notebook-tests: $(INSTALLED)
	rm -rf reports/runs/ci
	$(BIN)/python -m fer_utils pipeline --profile ci --prepare-only
	$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg \
		-p no:cacheprovider reports/runs/ci/*.ipynb

## Speed figures (load time, training throughput); prints, asserts nothing.
benchmarks: $(INSTALLED)
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_training.py --rounds 5
	$(BIN)/python benchmarks/bench_architectures.py

## The long training runs (about three days on two CPU cores), in the order their results are
## needed: the phases (phase 3 also with the authors' 64x64 input), notebook 08's ablation ladder,
## the own network's two members, then notebook 08 itself (it composes models/own_model_7.keras
## from the members), the two FER+ runs, then the student distilled from that model (last, so
## that notebook 08's result can still add a member to the teacher before the student learns
## from it). Each run resumes where it stopped, so after an interruption run the same command
## again; finished runs are recorded under models/ and reports/ (--record) and skipped. The
## 6-class phase-3 run follows the 64x64 run, whose result fixed its input size, and the members'
## recipe (_OWN_TRAINING) took the levers the ladder showed to pay (the rules and outcomes are in
## fer_utils/training/experiments.py).
## Needs the real data: FER2013_CSV (and FERPLUS_CSV for the FER+ runs).
TRAIN_QUEUE := phase3_mini_xception_7 phase3_mini_xception_7_64px phase2_cnn phase3_mini_xception_6 \
	ablation_1_plain ablation_2_residual ablation_3_sgd_cosine ablation_4_label_smoothing \
	ablation_5_random_erasing ablation_6_mixup ablation_7_weight_averaging \
	own_net_7_seed1 own_net_7_80ep_seed2 own_net_7_80ep_seed3
## Notebook 08 (re)composes the saved model until its sidecar names the last member.
OWN_MODEL_SIDECAR := models/own_model_7.json
OWN_MODEL_LAST_MEMBER := own_net_7_80ep_seed3
AFTER_OWN_MODEL_QUEUE := ferplus_majority ferplus_crossentropy distilled_mini_xception_7
## One process per run, each with a fresh TensorFlow: a crash inside TensorFlow (see
## fer_utils/__init__.py) stops the queue where it shows, and running it again resumes that run.
train-queue: $(INSTALLED)
	for experiment in $(TRAIN_QUEUE); do $(BIN)/python -m fer_utils train --record $$experiment || exit 1; done
	grep -qs '"$(OWN_MODEL_LAST_MEMBER)"' $(OWN_MODEL_SIDECAR) || $(BIN)/python -m fer_utils pipeline --profile full --only 08_own_model.ipynb
	for experiment in $(AFTER_OWN_MODEL_QUEUE); do $(BIN)/python -m fer_utils train --record $$experiment || exit 1; done

## Issue 29, in order: the distillation grid (temperature and hard-label weight, on a proxy), the
## student candidates and the born-again network (defined once the grid has chosen their setting,
## by the rule in fer_utils/training/experiments.py). Each run resumes where it stopped.
DISTILL_GRID := distill_proxy_t2_w02 distill_proxy_t4_w02 distill_proxy_t1_w02 distill_proxy_t2_w05
DISTILL_AFTER_GRID := student_proxy_mini_xception student_proxy_separable_32_256 \
	student_proxy_32_256_one_conv student_proxy_24_192
## then the proxies' speed (the student's rule needs it), the real-time student and the born-again network
DISTILL_AFTER_SPEED := realtime_student_7 born_again_fer_net_7
STUDENT_SPEED_CSV := reports/metrics/student_speed.csv
distill-queue: $(INSTALLED)
	for experiment in $(DISTILL_GRID) $(DISTILL_AFTER_GRID); do $(BIN)/python -m fer_utils train --record $$experiment || exit 1; done
	test -f $(STUDENT_SPEED_CSV) || $(BIN)/python benchmarks/bench_students.py --out $(STUDENT_SPEED_CSV)
	for experiment in $(DISTILL_AFTER_SPEED); do $(BIN)/python -m fer_utils train --record $$experiment || exit 1; done

clean-runs:
	rm -rf reports/runs
