#!/usr/bin/env bash
# Issue 7 acceptance on SciFact (BEIR layout in ../shared/data/scifact): the hybrid of BM25 and
# MiniLM next to both members, and MiniLM trained on the train claims (BM25 hard negatives)
# plus DRAMA-augmented data (crop, qgen, rerank on PASSAGES passages each; offline
# SmolLM2-135M-Instruct as the generator), and with SyNeg hybrid negatives vs BM25 negatives
# alone (and synthetic-only) on the first SYNEG train claims. Every trained row starts from
# all-MiniLM-L6-v2, runs 2 whole epochs of batch 16 with seed 0 (issue 17: no step cap), and is
# scored on the 300 test claims; passages are cut at 128 tokens (the CPU budget, as in the DPR rows).
# Usage: [FIT=<run id, record or fit folder>] [GENERATOR=hf|ct2] [SYNEG_ARGS="k=v ..."] \
#        benchmarks/synth_scifact.sh [hybrid|augment|crop|llm|syneg|all] [PASSAGES] [SYNEG]
#        (augment = crop (baseline + crop arms) + llm (qgen, rerank); defaults: all, 809 passages per augmenter, 400 claims for the SyNeg comparison; FIT defaults
#        to the baseline trained by the augment part; GENERATOR writes qgen / rerank / SyNeg data,
#        qgen sampled at DRAMA's temperature 0.8 / top-p 0.9 (the augmenter's defaults), rerank
#        ranking greedily; SYNEG_ARGS are extra --negatives-arg settings,
#        e.g. "prompt=abstract min_words=20 max_new_tokens=384", the recorded arms with the 135M generator)
set -euo pipefail
PART=${1:-all}
PASSAGES=${2:-809}
SYNEG=${3:-400}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
GENERATOR=${GENERATOR:-hf}
syneg_args=(); for a in ${SYNEG_ARGS:-}; do syneg_args+=(--negatives-arg "$a"); done
minilm=(--retriever-arg model=offline:all-minilm-l6-v2 --retriever-arg pooling=mean)
common=(--dataset beir:../shared/data/scifact --save-record leaderboards/records)
run() { echo "== $*" >&2; "$RETBENCH" run "${common[@]}" "$@" --json | python3 -c \
  'import json,sys; r=json.load(sys.stdin); c=r["config"]; print(r["run_id"][:10], c["retriever"], c.get("augment"), c.get("negatives"), c["retriever_args"].get("method", ""), r["metrics"].get("nDCG@10"), json.dumps(r["cost"].get("stage_seconds")))'; }
if [[ $PART == hybrid || $PART == all ]]; then
  members='member_args={"dpr": {"model": "offline:all-minilm-l6-v2", "pooling": "mean"}}'
  run --retriever hybrid --retriever-arg members=bm25,dpr --retriever-arg "$members"
  run --retriever hybrid --retriever-arg members=bm25,dpr --retriever-arg "$members" \
      --retriever-arg method=interpolation
fi
trained=(--retriever dpr "${minilm[@]}" --retriever-arg epochs=2 --retriever-arg train_batch_size=16
         --retriever-arg passage_max_length=128)
if [[ $PART == augment || $PART == crop || $PART == all ]]; then
  # issue 17: whole epochs (no max_steps), 1 synthetic item per claim; crop labelled by BM25 and
  # by the baseline's trained DPR (FIT: its fit folder or record); qgen and rerank on the same passages
  baseline=$(run "${trained[@]}" --fit-split train); echo "$baseline"
  FIT=${FIT:-${baseline%% *}}
  for labeler in bm25 "dpr@$FIT"; do
    run "${trained[@]}" --fit-split train --augment crop --augment-arg passages="$PASSAGES" \
        --augment-arg labeler="$labeler" --augment-ratio 1
  done
fi
if [[ $PART == augment || $PART == llm || $PART == all ]]; then
  for recipe in qgen rerank; do
    run "${trained[@]}" --fit-split train --augment "$recipe" --augment-arg passages="$PASSAGES" --augment-ratio 1 \
        --augment-generator "$GENERATOR"
  done
fi
if [[ $PART == syneg || $PART == all ]]; then
  # issue 17: the same start, seed, epochs and temperature (0.017) in every arm
  tau=(--retriever-arg temperature=0.017)
  run "${trained[@]}" "${tau[@]}" --fit-split "train[:$SYNEG]" --retriever-arg hard_negatives=3 --negatives bm25-hard
  run "${trained[@]}" "${tau[@]}" --fit-split "train[:$SYNEG]" --retriever-arg hard_negatives=3 --negatives syneg \
      --generator "$GENERATOR" "${syneg_args[@]}"
  run "${trained[@]}" "${tau[@]}" --fit-split "train[:$SYNEG]" --retriever-arg hard_negatives=1 --negatives syneg \
      --negatives-arg mix=synthetic-only --generator "$GENERATOR" "${syneg_args[@]}"
fi
