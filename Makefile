# Shortcuts for the scripts; the two commands of the README work without make.
.PHONY: serve test ui bench serve-audio-1080 serve-speech-1080 dev-audio-1080 dev-speech-1080 \
	background-dev-audio-1080 background-dev-speech-1080 stop-dev

# The card the original's audio targets pin speech to; override with `make GTX1080TI_UUID=GPU-… …`.
GTX1080TI_UUID ?= $(shell nvidia-smi --query-gpu=uuid,name --format=csv,noheader 2>/dev/null | grep 'GTX 1080 Ti' | head -n 1 | cut -d, -f1)

serve:            ## build the UI and Piface, start `piface serve` on :7832
	./scripts/serve.sh $(ARGS)

test:             ## every test (Rust, UI specs, browser)
	./scripts/test.sh

ui:               ## build the web UI only (embedded at the next cargo build)
	npm --prefix frontend ci --no-audit --no-fund && npm --prefix frontend run build

bench:            ## the benchmarks, each printing ratios against its in-run baseline
	cargo bench -p piface-coordinator

# The original's GPU targets: speech and TTS pinned to the GTX 1080 Ti (CUDA build; sm_61 runs f32).
# `dev-*` adds --dev; `background-dev-*` runs that under nohup (log and pid in /tmp); `stop-dev` stops it.
PIFACE_DEV_LOG ?= /tmp/piface-dev.log
PIFACE_DEV_PID ?= /tmp/piface-dev.pid

# First CUDA 12.x's nvcc (CUDA 13 cannot build for the 1080 Ti's compute capability 6.1: the
# script says what to install), then the card.
define need_1080
	@./scripts/cuda-env.sh 61
	@if [ -z "$(GTX1080TI_UUID)" ]; then \
		echo "GTX 1080 Ti not detected via nvidia-smi."; \
		echo "Check with: nvidia-smi --query-gpu=uuid,name --format=csv,noheader"; exit 1; fi
endef

serve-audio-1080: ## `piface serve` with speech and TTS pinned to the GTX 1080 Ti
	$(need_1080)
	CUDA_COMPUTE_CAP=61 CUDA_VISIBLE_DEVICES=$(GTX1080TI_UUID) PIFACE_FEATURES=cuda ./scripts/serve.sh --speech-gpu --tts-gpu $(ARGS)

dev-audio-1080:   ## the same with --dev
	$(need_1080)
	CUDA_COMPUTE_CAP=61 CUDA_VISIBLE_DEVICES=$(GTX1080TI_UUID) PIFACE_FEATURES=cuda ./scripts/serve.sh --dev --speech-gpu --tts-gpu $(ARGS)

background-dev-audio-1080: ## dev-audio-1080 in the background (log $(PIFACE_DEV_LOG), pid $(PIFACE_DEV_PID))
	$(need_1080)
	CUDA_COMPUTE_CAP=61 CUDA_VISIBLE_DEVICES=$(GTX1080TI_UUID) PIFACE_FEATURES=cuda nohup ./scripts/serve.sh --dev --speech-gpu --tts-gpu $(ARGS) \
		> $(PIFACE_DEV_LOG) 2>&1 & echo $$! > $(PIFACE_DEV_PID)
	@echo "started (pid $$(cat $(PIFACE_DEV_PID))); log: $(PIFACE_DEV_LOG)"

stop-dev:         ## stop the background server and whatever listens on :7832
	-@if [ -f $(PIFACE_DEV_PID) ]; then kill $$(cat $(PIFACE_DEV_PID)) 2>/dev/null; rm -f $(PIFACE_DEV_PID); fi
	-@pids=$$(lsof -ti :7832 2>/dev/null); if [ -n "$$pids" ]; then kill $$pids; fi

serve-speech-1080: serve-audio-1080
dev-speech-1080: dev-audio-1080
background-dev-speech-1080: background-dev-audio-1080
