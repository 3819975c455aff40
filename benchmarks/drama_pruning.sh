#!/usr/bin/env bash
# Issue 22 acceptance on SciFact: SmolLM2-135M-Instruct (offline) pruned by `retbench prune` to
# 24 layers x 6 heads x 1024 FFN x 384 hidden (57.8M of 134.5M parameters, 43%), recovered on
# the SciFact corpus, then trained as a DRAMA retriever exactly as the unpruned row
# (drama-test-75ee6e9d5b: 1 epoch, batch 16, BM25 hard negatives, passages cut at 128 tokens,
# no Matryoshka) and scored on the 300 test claims; next to a randomly initialised model of
# the pruned shape, recovered and trained the same way. Every step resumes when re-run.
# Usage: benchmarks/drama_pruning.sh [PRUNE_STEPS] [RECOVER_STEPS]   (defaults 200 200)
set -euo pipefail
PRUNE_STEPS=${1:-200}
RECOVER_STEPS=${2:-200}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
shape=(--layers 24 --heads 6 --intermediate 1024 --hidden 384)
settings=(--prune-steps "$PRUNE_STEPS" --recover-steps "$RECOVER_STEPS" --seq-len 256 --batch-size 4
          --recover-batch-size 4 --micro-batch-size 4 --held-out-blocks 32 --checkpoint-every 10)
prune() { "$RETBENCH" prune --model offline:smollm2-135m-instruct --text ../shared/data/scifact/corpus.jsonl \
          "${shape[@]}" "${settings[@]}" "$@" | head -1; }
pruned=$(prune); echo "pruned: $pruned"
random=$(prune --init random); echo "random init: $random"
for model in "$pruned" "$random"; do
  echo "== drama on $model" >&2
  "$RETBENCH" run --dataset beir:../shared/data/scifact --retriever drama --retriever-arg "model=$model" \
      --retriever-arg epochs=1 --retriever-arg train_batch_size=16 --retriever-arg passage_max_length=128 \
      --retriever-arg matryoshka_dims=null --fit-split train --negatives bm25-hard --negatives-arg depth=30 \
      --negatives-arg pick=random --shard-size 500 \
      --save-record leaderboards/records --json | python3 -c \
    'import json,sys; r=json.load(sys.stdin); print(r["run_id"][:10], r["metrics"].get("nDCG@10"), json.dumps(r["cost"].get("stage_seconds")), r["cost"].get("peak_rss_mb"))'
done
