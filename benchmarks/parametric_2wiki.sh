#!/usr/bin/env bash
# Issue 15 acceptance: closed book, rag, prag, prag-combine, dyprag, dyprag-combine on the
# 2WikiMultihopQA 500 subset with the offline SmolLM2-135M-Instruct generator and BM25 top-3
# over the context paragraphs, every row scored on dev[:EVAL]. DyPRAG's translator trains on
# the top-3 passages of dev[300:FIT] (the paper's rule: questions 300-499 for the translator,
# the first 300 for testing; FIT=500 is what a run without --fit-split does).
# AUGMENT is the augmentation setting passed to every PRAG / DyPRAG row (JSON, may be {}).
# EXTRA (environment) is appended to every PRAG / DyPRAG row, e.g. EXTRA="--augment-generator ct2" to write
# PRAG's QA pairs with the CTranslate2 generator while the reader answers with hf.
# Rows that need no per-passage LoRA come first, DyPRAG before PRAG, so a partial run has the
# closed-book / rag / dyprag comparison; every row resumes from its shards when re-run.
# Usage: benchmarks/parametric_2wiki.sh [EVAL] [FIT] [AUGMENT]   (defaults 200 500 {})
set -euo pipefail
EVAL=${1:-200}
FIT=${2:-500}
AUGMENT=${3:-"{}"}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
common=(--dataset 2wikimultihopqa --data-dir ../shared/data --retriever bm25 --split "dev[:$EVAL]"
        --shard-size 10 --save-record leaderboards/records)
read -r -a extra <<< "${EXTRA:-}"
parametric=(--injector-arg "augment_args=$AUGMENT" "${extra[@]}")
run() { echo "== $*" >&2; "$RETBENCH" run "${common[@]}" "$@" --json | python3 -c \
  'import json,sys; r=json.load(sys.stdin); print(r["config"].get("reader"), r["config"].get("injector"), r["metrics"].get("F1"), json.dumps({k: r["cost"].get(k) for k in ("online_seconds_per_question", "online_seconds", "offline_seconds_per_passage", "storage_bytes", "prepared_passages")}))'; }
run --reader rag --reader-arg mode=no-retrieval
run --reader rag
run --reader dyprag --fit-split "dev[300:$FIT]" "${parametric[@]}"
run --reader dyprag --injector dyprag-combine --fit-split "dev[300:$FIT]" "${parametric[@]}"
run --reader prag "${parametric[@]}"
run --reader prag --injector prag-combine "${parametric[@]}"
