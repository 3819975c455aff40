#!/usr/bin/env bash
# Issue 18 acceptance, REALM / ORQA fine-tuning on NQ (gold-passage corpus): the realm reader
# over MiniLM (all-MiniLM-L6-v2, mean pooling, normalised; the retriever is not trained on its
# own: --fit-only reader) trained on test[:1655] and scored on test[1655:2155], reader only
# (query_encoder=fixed) vs reader + query tower trained against the fixed index (ORQA's loss,
# the default). Reader settings as the BM25 rows (lr 5e-5, 192 tokens, train_k 4); the
# retrieval logits are cosines over the MiniLM retriever's own InfoNCE temperature (0.05).
# Prints EM / F1 per arm and the paired randomisation p of the co-trained arm against reader-only.
# Usage: benchmarks/realm_nq.sh [FIT] [EVAL]   (defaults 'test[:1655]' 'test[1655:2155]')
set -euo pipefail
FIT=${1:-test[:1655]}
EVAL=${2:-test[1655:2155]}
RETBENCH=${RETBENCH:-.venv/bin/retbench}
PYTHON=${PYTHON:-.venv/bin/python}
common=(--dataset nq --data-dir ../shared/data --retriever dpr --retriever-arg model=offline:all-minilm-l6-v2
        --retriever-arg pooling=mean --reader realm --fit-split "$FIT" --fit-only reader --split "$EVAL"
        --reader-arg learning_rate=5e-5 --reader-arg max_length=192 --reader-arg train_k=4
        --reader-arg retrieval_temperature=0.05 --save-record leaderboards/records)
ids=()
for mode in fixed auto; do
  echo "== query_encoder=$mode" >&2
  ids+=("$("$RETBENCH" run "${common[@]}" --reader-arg query_encoder=$mode --json | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin); f = r["training"]["fit-reader"]
print(r["run_id"][:10], file=sys.stdout)
print(r["config"]["reader_args"].get("query_encoder"), {m: round(r["metrics"][m], 4) for m in ("EM", "F1", "Top-1", "Top-5")},
      {k: f.get(k) for k in ("used_questions", "retriever_signal_questions", "reader_signal_questions",
                             "loss_first_tenth", "loss_last_tenth", "train_seconds")}, file=sys.stderr)')")
done
"$PYTHON" - "${ids[@]}" <<'PY'
import sys
from pathlib import Path

from retbench import run_record_path
from retbench.reporting.leaderboard import paired_randomization_p
from retbench.reporting.records import load_record

fixed, trained = (load_record(run_record_path(i)) for i in sys.argv[1:3])
for metric in ("EM", "F1", "Top-1", "Top-5"):
    a = {q: v[metric] for q, v in fixed.per_query.items() if metric in v}
    b = {q: v[metric] for q, v in trained.per_query.items() if metric in v}
    if a and b:
        print(f"{metric}: reader-only {fixed.metrics[metric]:.4f}  + query tower {trained.metrics[metric]:.4f}"
              f"  p = {paired_randomization_p(a, b):.4f}")
PY
