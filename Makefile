# Shortcuts for the scripts; the two commands of the README work without make.
.PHONY: serve test ui bench serve-audio-1080 serve-speech-1080 dev-audio-1080 dev-speech-1080

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

serve-audio-1080: ## `piface serve` with speech pinned to the GTX 1080 Ti
	@if [ -z "$(GTX1080TI_UUID)" ]; then \
		echo "GTX 1080 Ti not detected via nvidia-smi."; \
		echo "Check with: nvidia-smi --query-gpu=uuid,name --format=csv,noheader"; exit 1; fi
	CUDA_VISIBLE_DEVICES=$(GTX1080TI_UUID) ./scripts/serve.sh --speech-gpu --tts-gpu $(ARGS)

serve-speech-1080: serve-audio-1080
dev-audio-1080: serve-audio-1080
dev-speech-1080: serve-audio-1080
