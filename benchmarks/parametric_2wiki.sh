#!/usr/bin/env bash
# Issue 6 acceptance: closed book, rag, prag, prag-combine, dyprag, dyprag-combine on the
# 2WikiMultihopQA 500 subset with the offline SmolLM2 generator and BM25 top-3 over the
# context paragraphs. DyPRAG's translator trains on dev[:TRAIN] (PRAG LoRAs of those
# questions' passages); every row is scored on dev[TRAIN:END], which no translator saw.
# Usage: benchmarks/parametric_2wiki.sh [TRAIN] [END]   (defaults 30 100; the full split: 100 500)
set -euo pipefail
TRAIN=${1:-30}
END=${2:-100}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
common=(--dataset 2wikimultihopqa --data-dir ../shared/data --retriever bm25 --split "dev[$TRAIN:$END]"
        --save-record leaderboards/records)
run() { echo "== $*" >&2; "$RETBENCH" run "${common[@]}" "$@" --json | python3 -c \
  'import json,sys; r=json.load(sys.stdin); print(r["config"].get("reader"), r["config"].get("injector"), r["metrics"].get("F1"), json.dumps({k: r["cost"].get(k) for k in ("online_seconds_per_question", "offline_seconds_per_passage", "storage_bytes", "prepared_passages")}))'; }
run --reader rag --reader-arg mode=no-retrieval
run --reader rag
run --reader dyprag --fit-split "dev[:$TRAIN]"
run --reader dyprag --injector dyprag-combine --fit-split "dev[:$TRAIN]"
run --reader prag
run --reader prag --injector prag-combine
