#!/usr/bin/env bash
# Issue 7 acceptance on SciFact (BEIR layout in ../shared/data/scifact): the hybrid of BM25 and
# MiniLM next to both members, and MiniLM trained on the train claims (BM25 hard negatives)
# plus DRAMA-augmented data (crop, qgen, rerank on PASSAGES passages each; offline
# SmolLM2-135M-Instruct as the generator), and with SyNeg hybrid negatives vs BM25 negatives
# alone on the first SYNEG train claims. Every trained row starts from all-MiniLM-L6-v2, runs
# the same steps of batch 16 with seed 0 (51 = one epoch of the 809 train claims), and is scored
# on the 300 test claims.
# Usage: benchmarks/synth_scifact.sh [hybrid|augment|syneg|all] [PASSAGES] [SYNEG]
#        (defaults: all, 100 passages per augmenter, 160 claims for the SyNeg comparison)
set -euo pipefail
PART=${1:-all}
PASSAGES=${2:-100}
SYNEG=${3:-160}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
minilm=(--retriever-arg model=offline:all-minilm-l6-v2 --retriever-arg pooling=mean)
common=(--dataset beir:../shared/data/scifact --save-record leaderboards/records)
run() { echo "== $*" >&2; "$RETBENCH" run "${common[@]}" "$@" --json | python3 -c \
  'import json,sys; r=json.load(sys.stdin); c=r["config"]; print(c["retriever"], c.get("augment"), c.get("negatives"), c["retriever_args"].get("method", ""), r["metrics"].get("nDCG@10"), json.dumps(r["cost"].get("stage_seconds")))'; }
if [[ $PART == hybrid || $PART == all ]]; then
  members='member_args={"dpr": {"model": "offline:all-minilm-l6-v2", "pooling": "mean"}}'
  run --retriever hybrid --retriever-arg members=bm25,dpr --retriever-arg "$members"
  run --retriever hybrid --retriever-arg members=bm25,dpr --retriever-arg "$members" \
      --retriever-arg method=interpolation
fi
trained=(--retriever dpr "${minilm[@]}")
if [[ $PART == augment || $PART == all ]]; then
  run "${trained[@]}" --fit-split train
  for recipe in crop qgen rerank; do
    run "${trained[@]}" --fit-split train --retriever-arg max_steps=51 --augment "$recipe" \
        --augment-arg passages="$PASSAGES"
  done
fi
if [[ $PART == syneg || $PART == all ]]; then
  run "${trained[@]}" --fit-split "train[:$SYNEG]"
  run "${trained[@]}" --fit-split "train[:$SYNEG]" --negatives syneg --negatives-arg domain=scientific
fi
